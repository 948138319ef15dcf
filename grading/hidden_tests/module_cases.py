"""The hidden cases of the module tasks (task2_0 to task2_11), one builder per task.

Each builder draws the inputs of its cases from the task's own stream and names the probe
(grading/probes.py) that runs them, with named arrays and the CS231n parameter dicts, so a
case reads like the test it is:

    draw.case("task2_2", label, "conv_forward_naive", dtype, x=..., w=..., b=...,
              conv_param={"stride": 2, "pad": 1})

The order of the draws is part of the suite: changing it changes every later case of the
task (and the golden record of the example submissions).
"""
from __future__ import annotations

import numpy as np

from grading.hidden_tests.suite import Draw
from grading.hidden_tests.verdicts import exact

BOTH, THREE = ("float64", "float32"), ("float64", "float32", "float64")


def _geometry_checks(probe: str, n: int) -> dict:
    return {f"{probe}_{i}": exact for i in range(n)}


def task2_0(draw: Draw):
    """Geometry: plain ints in, ints out (no arrays), each compared exactly."""
    rng = draw.rng

    def tiling(max_size=64):
        while True:
            k, s, p = int(rng.integers(1, 12)), int(rng.integers(1, 5)), int(rng.integers(0, 4))
            sizes = [n for n in range(1, max_size + 1) if n + 2 * p >= k and (n + 2 * p - k) % s == 0]
            if sizes:
                return int(rng.choice(sizes)), k, s, p

    calls = [{"size": n, "kernel": k, "stride": s, "pad": p} for n, k, s, p in (tiling() for _ in range(6))]
    draw.case("task2_0", "conv_output_size, 6 geometries that tile (strides 1-4, pads 0-3)",
              "conv_output_size", calls=calls, checks=_geometry_checks("conv_output_size", len(calls)))

    bad = []
    while len(bad) < 3:
        n, k, s, p = int(rng.integers(5, 64)), int(rng.integers(1, 8)), int(rng.integers(2, 5)), int(rng.integers(0, 3))
        if (n + 2 * p - k) % s:
            bad.append({"size": n, "kernel": k, "stride": s, "pad": p})
    draw.case("task2_0", "conv_output_size raises ValueError, 3 strides that do not tile",
              "conv_output_size", calls=bad, raises=True, checks=_geometry_checks("conv_output_size", len(bad)))

    counts = []
    for bias in (True, False, True):
        C, F = int(rng.integers(1, 130)), int(rng.integers(1, 130))
        HH, WW = (int(v) for v in rng.integers(1, 8, size=2))
        counts.append({"in_channels": C, "out_channels": F, "kernel_size": [HH, WW], "bias": bias})
        counts.append({"in_channels": C, "out_channels": F, "kernel_size": HH, "bias": bias})
    draw.case("task2_0", "conv_param_count: square and (HH, WW) kernels, with and without bias",
              "conv_param_count", calls=counts, checks=_geometry_checks("conv_param_count", len(counts)))

    macs = []
    for _ in range(4):
        n, k, s, p = tiling(48)
        C, F = int(rng.integers(1, 65)), int(rng.integers(1, 65))
        kw = int(rng.integers(1, 8))
        widths = [m for m in range(1, 49) if m + 2 * p >= kw and (m + 2 * p - kw) % s == 0]
        m = int(rng.choice(widths)) if widths else n
        macs.append({"input_shape": [C, n, m], "out_channels": F, "kernel_size": [k, kw] if widths else k,
                     "stride": s, "pad": p})
    draw.case("task2_0", "conv_macs: 4 layers (strides, pads, non-square kernels)",
              "conv_macs", calls=macs, checks=_geometry_checks("conv_macs", len(macs)))

    stacks = [[[int(rng.integers(1, 8)), int(rng.integers(1, 4))] for _ in range(depth)] for depth in (1, 3, 5, 7)]
    draw.case("task2_0", "receptive_field: 4 stacks of conv and pool layers (strides 1-3)",
              "receptive_field", stacks=stacks, checks=_geometry_checks("receptive_field", len(stacks)))


def task2_1(draw: Draw):
    for dtype in BOTH:
        N, dims, M = int(draw.rng.integers(2, 5)), tuple(int(d) for d in draw.rng.integers(2, 5, size=2)), 5
        D = dims[0] * dims[1]
        draw.case("task2_1", f"affine_forward/backward, {dtype}, x {N}x{dims[0]}x{dims[1]}, {M} outputs",
                  "affine", dtype, x=draw.normal((N, *dims), dtype), w=draw.normal((D, M), dtype),
                  b=draw.normal((M,), dtype), dout=draw.normal((N, M), dtype))
        draw.case("task2_1", f"relu_forward/backward, {dtype}, x {N}x{M}x3", "relu", dtype,
                  x=draw.normal((N, M, 3), dtype), dout=draw.normal((N, M, 3), dtype))
        K = int(draw.rng.integers(3, 8))
        draw.case("task2_1", f"softmax_loss, {dtype}, {N + 3} examples, {K} classes", "softmax_loss", dtype,
                  x=draw.normal((N + 3, K), dtype, scale=3.0), y=draw.labels((N + 3,), K))


def _odd_conv(rng, max_hw):
    """A random conv geometry that tiles: odd strides/pads, non-square kernels."""
    stride = int(rng.integers(1, 4))
    pad = int(rng.integers(0, 3))
    HH, WW = (int(v) for v in rng.integers(1, 6, size=2))
    dims = []
    for k in (HH, WW):
        lo = max(1, k - 2 * pad)
        cands = [n for n in range(lo, max_hw + 1) if (n + 2 * pad - k) % stride == 0]
        dims.append(int(rng.choice(cands)))
    return stride, pad, HH, WW, dims[0], dims[1]


def _pool_geometry(rng, max_hw, min_window=1):
    ph, pw = (int(v) for v in rng.integers(min_window, 4, size=2))
    stride = int(rng.integers(1, 3))
    dims = []
    for k in (ph, pw):
        cands = [n for n in range(k, max_hw + 1) if (n - k) % stride == 0 and n > k]
        dims.append(int(rng.choice(cands)))
    return ph, pw, stride, dims[0], dims[1]


def conv_cases(draw: Draw, task: str, probe: str, dtypes, max_hw: int, N: int, C: int, F: int):
    """Convolution cases of `probe` (conv_forward_naive, conv_backward_fast, ...), one per dtype."""
    backward = "backward" in probe
    for dtype in dtypes:
        stride, pad, HH, WW, H, W = _odd_conv(draw.rng, max_hw)
        label = (f"{probe}, {dtype}, input {N}x{C}x{H}x{W}, {F} filters, kernel {HH}x{WW}, "
                 f"stride {stride}, pad {pad}")
        H_out, W_out = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
        x, w, b = draw.normal((N, C, H, W), dtype), draw.normal((F, C, HH, WW), dtype), draw.normal((F,), dtype)
        grads = {"dout": draw.normal((N, F, H_out, W_out), dtype)} if backward else {}
        draw.case(task, label, probe, dtype, x=x, w=w, b=b, conv_param={"stride": stride, "pad": pad}, **grads)


def pool_cases(draw: Draw, task: str, kind: str, dtypes, max_hw: int, N: int, C: int):
    """Max-pool cases of the `kind` ("naive" or "fast") layers: forward, backward, and ties."""
    for dtype in dtypes:
        ph, pw, stride, H, W = _pool_geometry(draw.rng, max_hw)
        H_out, W_out = 1 + (H - ph) // stride, 1 + (W - pw) // stride
        tag = f"{dtype}, input {N}x{C}x{H}x{W}, window {ph}x{pw}, stride {stride}"
        pool_param = {"pool_height": ph, "pool_width": pw, "stride": stride}
        draw.case(task, f"max_pool_forward_{kind}, {tag}", f"max_pool_forward_{kind}", dtype,
                  x=draw.normal((N, C, H, W), dtype), pool_param=pool_param)
        draw.case(task, f"max_pool_backward_{kind}, {tag}", f"max_pool_backward_{kind}", dtype,
                  x=draw.normal((N, C, H, W), dtype), pool_param=dict(pool_param),
                  dout=draw.normal((N, C, H_out, W_out), dtype))
    # Ties: windows of a ReLU output share their max (often 0); the gradient goes to the first
    # max in row-major order, never to every tied one.
    ph, pw, stride, H, W = _pool_geometry(draw.rng, max_hw, min_window=2)
    H_out, W_out = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    x = np.maximum(np.round(draw.normal((N, C, H, W), "float64")), 0.0)  # small integers, mostly 0
    draw.case(task, f"max_pool_backward_{kind}, float64, ties (small integers, mostly 0), input "
              f"{N}x{C}x{H}x{W}, window {ph}x{pw}, stride {stride}", f"max_pool_ties_{kind}", "float64",
              x=x, pool_param={"pool_height": ph, "pool_width": pw, "stride": stride},
              dout=draw.normal((N, C, H_out, W_out), "float64"))


def task2_7(draw: Draw):
    for dtype in BOTH:
        N, D, M = 3, 6, 4
        draw.case("task2_7", f"affine_relu_forward/backward, {dtype}", "affine_relu", dtype,
                  x=draw.normal((N, 2, 3), dtype), w=draw.normal((D, M), dtype), b=draw.normal((M,), dtype),
                  dout=draw.normal((N, M), dtype))

    N, C, H, W, F = 2, 3, 8, 6, 4
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    for dtype in BOTH:
        draw.case("task2_7", f"conv_relu_forward/backward, {dtype}, input {N}x{C}x{H}x{W}, "
                  "kernel 3x3, stride 1, pad 1", "conv_relu", dtype,
                  x=draw.normal((N, C, H, W), dtype), w=draw.normal((F, C, 3, 3), dtype),
                  b=draw.normal((F,), dtype), conv_param=conv_param, dout=draw.normal((N, F, H, W), dtype))
        draw.case("task2_7", f"conv_relu_pool_forward/backward, {dtype}, input {N}x{C}x{H}x{W}, "
                  "kernel 3x3, 2x2 pool", "conv_relu_pool", dtype,
                  x=draw.normal((N, C, H, W), dtype), w=draw.normal((F, C, 3, 3), dtype),
                  b=draw.normal((F,), dtype), conv_param=conv_param, pool_param=pool_param,
                  dout=draw.normal((N, F, H // 2, W // 2), dtype))

    dtype = "float64"
    draw.case("task2_7", f"conv_bn_relu_forward/backward, {dtype}, train mode", "conv_bn_relu", dtype,
              x=draw.normal((N, C, H, W), dtype), w=draw.normal((F, C, 3, 3), dtype), b=draw.normal((F,), dtype),
              gamma=draw.normal((F,), dtype), beta=draw.normal((F,), dtype), conv_param=conv_param,
              bn_param={"mode": "train", "eps": 1e-5, "momentum": 0.9}, dout=draw.normal((N, F, H, W), dtype))


def task2_8(draw: Draw):
    for dtype, reg in (("float64", 0.0), ("float64", 0.7), ("float32", 0.3)):
        C, H, W = 3, int(draw.rng.choice([6, 8, 10])), int(draw.rng.choice([6, 8, 12]))
        F, fs, hidden, classes, N = 3, int(draw.rng.choice([3, 5])), 7, 5, 4
        shapes = {"W1": (F, C, fs, fs), "b1": (F,), "W2": (F * (H // 2) * (W // 2), hidden),
                  "b2": (hidden,), "W3": (hidden, classes), "b3": (classes,)}
        net = {"input_dim": [C, H, W], "num_filters": F, "filter_size": fs, "hidden_dim": hidden,
               "num_classes": classes, "weight_scale": 1e-2, "reg": reg, "dtype": dtype}
        weights = {k: draw.normal(shape, dtype, scale=0.3) for k, shape in shapes.items()}
        draw.case("task2_8", f"ThreeLayerConvNet.loss, {dtype}, reg {reg}, input {C}x{H}x{W}, "
                  f"{F} filters {fs}x{fs}, hidden {hidden}, {classes} classes", "three_layer_convnet", dtype,
                  net=net, **weights, X=draw.normal((N, C, H, W), dtype), y=draw.labels((N,), classes))


def task2_10(draw: Draw):
    for dtype in BOTH:
        N, D = int(draw.rng.integers(4, 9)), int(draw.rng.integers(3, 7))
        draw.case("task2_10", f"batchnorm_forward/backward (train), {dtype}, x {N}x{D}", "batchnorm_train", dtype,
                  x=draw.normal((N, D), dtype, scale=2.0), gamma=draw.normal((D,), dtype),
                  beta=draw.normal((D,), dtype), bn_param={"mode": "train", "eps": 1e-5, "momentum": 0.8},
                  dout=draw.normal((N, D), dtype))

        running_mean, running_var = draw.normal((D,), dtype), draw.normal((D,), dtype, scale=0.1)
        draw.case("task2_10", f"batchnorm_forward (test mode), {dtype}, x {N}x{D}", "batchnorm_test", dtype,
                  running_mean=running_mean, running_var=(np.abs(running_var) + 0.5).astype(dtype),
                  x=draw.normal((N, D), dtype), gamma=draw.normal((D,), dtype), beta=draw.normal((D,), dtype),
                  bn_param={"mode": "test", "eps": 1e-5, "momentum": 0.9})

        N, C, H, W = 3, int(draw.rng.integers(2, 5)), int(draw.rng.integers(3, 6)), int(draw.rng.integers(3, 6))
        draw.case("task2_10", f"spatial_batchnorm_forward/backward (train), {dtype}, x {N}x{C}x{H}x{W}",
                  "spatial_batchnorm", dtype, x=draw.normal((N, C, H, W), dtype, scale=3.0),
                  gamma=draw.normal((C,), dtype), beta=draw.normal((C,), dtype),
                  bn_param={"mode": "train", "eps": 1e-5, "momentum": 0.9}, dout=draw.normal((N, C, H, W), dtype))


def task2_11(draw: Draw):
    for dtype, G, C in (("float64", 2, 6), ("float32", 3, 6), ("float64", 1, 4)):
        N, H, W = int(draw.rng.integers(2, 4)), int(draw.rng.integers(3, 6)), int(draw.rng.integers(3, 6))
        draw.case("task2_11", f"spatial_groupnorm_forward/backward, {dtype}, x {N}x{C}x{H}x{W}, G={G}",
                  "spatial_groupnorm", dtype, x=draw.normal((N, C, H, W), dtype, scale=2.0),
                  gamma=draw.normal((1, C, 1, 1), dtype), beta=draw.normal((1, C, 1, 1), dtype), G=G,
                  gn_param={"eps": 1e-5}, dout=draw.normal((N, C, H, W), dtype))


BUILDERS = {
    "task2_0": task2_0,
    "task2_1": task2_1,
    "task2_2": lambda draw: conv_cases(draw, "task2_2", "conv_forward_naive", THREE, 9, 2, 3, 4),
    "task2_3": lambda draw: conv_cases(draw, "task2_3", "conv_backward_naive", THREE, 8, 2, 2, 3),
    "task2_4": lambda draw: pool_cases(draw, "task2_4", "naive", BOTH, 9, 2, 3),
    "task2_5": lambda draw: (conv_cases(draw, "task2_5", "conv_forward_fast", THREE, 16, 4, 3, 8),
                             conv_cases(draw, "task2_5", "conv_backward_fast", THREE, 16, 4, 3, 8)),
    "task2_6": lambda draw: pool_cases(draw, "task2_6", "fast", THREE, 16, 4, 3),
    "task2_7": task2_7,
    "task2_8": task2_8,
    "task2_10": task2_10,
    "task2_11": task2_11,
}
