"""cs_layers: the convolutional-network module students complete.

Import what you need from its submodules, for example
``from cs_layers.layers import conv_forward_naive``. This file imports nothing,
so that a mistake in one module never stops the others from loading.

Modules:
- layers: naive conv/pool, affine/relu/softmax, batchnorm, spatial batch/group norm
- fast_layers: im2col / stride-trick conv and pooling, same contract as the naive ones
- layer_utils: sandwich layers
- cnn: ThreeLayerConvNet
- optim, solver: update rules and the training loop
- gradient_check: numerical gradients, rel_error, check_close
- data: CIFAR-10 and the embedded offline default
- vis: filter grids and training curves
- check, submit: student self-check and submission collector
"""
__version__ = "0.1.0"
