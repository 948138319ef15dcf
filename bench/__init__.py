"""Benchmarks (speed is measured here, never asserted in tests).

- `python -m bench.layers [--quick]`: naive vs fast vs torch.nn.functional conv
  and max pool, float64 and float32, forward and backward, with the targets.
- `python -m bench.train_epoch [--fraction F]`: one CIFAR-sized training epoch
  of the default ThreeLayerConvNet against the same model in PyTorch.
- `python -m bench.notebooks --out DIR`: execute both notebooks with the
  reference solutions; time per notebook and its slowest cells, HTML in DIR.
- `python -m bench.grading [--n N] [--notebooks]`: autograde a generated class;
  seconds per 100 submissions.
(bench/machine.py describes the machine and BLAS threads for every table.)
"""
