"""Benchmarks (speed is measured here, never asserted in tests).

- `python -m bench.layers [--quick]`: naive vs fast vs torch.nn.functional conv
  and max pool, float64 and float32, forward and backward, with the targets.
- `python -m bench.train_epoch [--fraction F]`: one CIFAR-sized training epoch
  of the default ThreeLayerConvNet against the same model in PyTorch.
"""
