"""cs_layers: the convolutional-network module students complete.

Import what you need from its submodules, for example
``from cs_layers.layers import conv_forward_naive``. This file imports nothing,
so that a mistake in one module never stops the others from loading.

Modules:
- course: the course table (tasks, points, files, notebooks) and shared names
- shapes: output sizes and every argument check of the layers (given code)
- layers: naive conv/pool, affine/relu/softmax, batchnorm, spatial batch/group norm
- fast_layers: im2col / stride-trick conv and pooling, same contract as the naive ones
- caches: the layer caches of the fast layers
- layer_utils: sandwich layers
- cnn: ThreeLayerConvNet
- optim, solver: update rules and the training loop
- gradient_check: numerical gradients, the relative error, check_close
- torch_nets: the PyTorch tasks
- data: CIFAR-10 and the embedded offline default
- vis, progress: filter grids, training curves, progress bars
- train: train the ConvNet from a terminal
- check, submit, notebook_cells: student self-check, submission collector, notebook integrity
- colab: setting up a Google Colab runtime
"""
__version__ = "0.1.0"
