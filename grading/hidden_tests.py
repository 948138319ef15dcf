"""Hidden tests: fresh inputs from a secret seed, reference outputs, points, verdicts.

Grader side only. This module imports the instructor's ``cs_layers`` (the
reference solution) to compute expected outputs; student code never runs in
this process. The student's functions run in ``grading.worker`` inside
``grading.sandbox``; only the arrays they return come back, and they are
validated (regular .npy file, size, no pickle, shape, float dtype, finite)
before being compared here.

    suite = build_suite(secret_seed)               # once per grading run
    results = grade_module(student_dir, suite, workdir=tmp)   # per student
    results.append(grade_model(student_dir / "assignments/convnets/convnet_model.npz"))
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import stat
import sys
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import cs_layers
from cs_layers import course
from cs_layers.gradient_check import relative_error
from grading import safeio, scrub, worker
from grading.results import TaskResult
from grading.sandbox import Limits, run_sandboxed

# Derived from the course table (cs_layers/course.py): points of the automatically graded
# tasks (task2_9 is the trained model, graded by grade_model), the PyTorch tasks (graded by
# grading.torch_cases in a torch worker; task3_5 from the saved challenge weights), and the
# file a task lives in (for "missing").
TASK_POINTS: dict[str, float] = {t.id: t.points for t in course.TASKS
                                 if course.HIDDEN in t.graded or course.CHECKPOINT in t.graded}
TORCH_TASKS = tuple(t.id for t in course.TASKS if t.file == "torch_nets")
MODEL_TASK = next(t.id for t in course.TASKS if course.CHECKPOINT in t.graded)
MODULE_TASKS = tuple(t for t in TASK_POINTS if t != MODEL_TASK and t not in TORCH_TASKS)
TASK_FILES = {t.id: t.file for t in course.TASKS if course.HIDDEN in t.graded}
TOL = {"float64": 1e-7, "float32": 1e-4}  # of cs_layers.gradient_check.relative_error
MODEL_THRESHOLDS = {"patterns": 0.80, "digits": 0.90, "cifar10": 0.50}  # test accuracy for full points
CHANCE = 0.10  # ten classes: below chance scores 0, linear up to the threshold
CASE_WALL_S = 5.0  # one case (or one module import) may take this long
OUT_OF_TIME = "not finished: the time budget of this submission ran out"
MAX_RESTARTS = 12  # worker restarts per student after a crash or timeout
# One worker run: the defaults, and 1 GiB for all its processes together (a correct
# submission's worker stays near 150 MiB).
MODULE_LIMITS = Limits(total_memory_mb=1024)
MAX_MODEL_BYTES = course.MAX_MODEL_BYTES  # uncompressed size of a checkpoint .npz
MAX_MODEL_MACS = 16_000_000  # per image; the notebook's model (32 7x7 filters, 3x32x32) costs 5.6 M
MAX_STATUS_BYTES = 8192  # a worker status file larger than this is the submission's fault
# Severity order used when a task's cases fail in different ways.
_SEVERITY = ("timeout", "memory", "error", "rejected", "failed", "missing")


@dataclass
class Case:
    """One hidden case: plan steps for the worker, inputs, reference outputs."""

    id: str  # "c007"
    task: str  # "task2_3"
    label: str  # shown to students: function, dtype, strides/pads/shapes (never values)
    steps: list  # worker.run_case steps
    outputs: list  # worker.run_case output specs
    inputs: dict[str, np.ndarray]  # name -> array (names are unique in the suite)
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    tol: float = TOL["float64"]
    checks: dict = field(default_factory=dict)  # output name -> check(received, expected, tol)

    def plan(self) -> dict:
        return {"id": self.id, "task": self.task, "steps": self.steps,
                "outputs": self.outputs, "inputs": sorted(self.inputs)}


@dataclass
class Suite:
    cases: list[Case]
    points: dict[str, float]
    torch: Suite | None = None  # the PyTorch tasks, graded in their own worker (torch_cases.py)

    def tasks(self) -> list[str]:
        return [t for t in self.points if any(c.task == t for c in self.cases)]


# ---------------------------------------------------------------- case builders
class _Builder:
    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.cases: list[Case] = []

    def new(self, task: str, label: str, dtype: str) -> tuple[Case, callable]:
        cid = f"c{len(self.cases):03d}"
        case = Case(cid, task, label, [], [], {}, tol=TOL[dtype])
        self.cases.append(case)

        def arr(name, shape, scale=1.0, kind="normal"):
            if kind == "labels":
                value = self.rng.integers(0, scale, size=shape).astype(np.int64)
            else:
                value = (scale * self.rng.standard_normal(shape)).astype(dtype)
            key = f"{cid}_{name}"
            case.inputs[key] = value
            return {"a": key}

        return case, arr

    def odd_conv(self, max_hw=9):
        """A random conv geometry that tiles: odd strides/pads, non-square kernels."""
        rng = self.rng
        stride = int(rng.integers(1, 4))
        pad = int(rng.integers(0, 3))
        HH, WW = (int(v) for v in rng.integers(1, 6, size=2))
        dims = []
        for k in (HH, WW):
            lo = max(1, k - 2 * pad)
            cands = [n for n in range(lo, max_hw + 1) if (n + 2 * pad - k) % stride == 0]
            dims.append(int(rng.choice(cands)))
        return stride, pad, HH, WW, dims[0], dims[1]

    def pool_geometry(self, max_hw=9, min_window=1):
        rng = self.rng
        ph, pw = (int(v) for v in rng.integers(min_window, 4, size=2))
        stride = int(rng.integers(1, 3))
        dims = []
        for k in (ph, pw):
            cands = [n for n in range(k, max_hw + 1) if (n - k) % stride == 0 and n > k]
            dims.append(int(rng.choice(cands)))
        return ph, pw, stride, dims[0], dims[1]


def exact(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    """(ok, message) for an integer output (a size or a count): it must be exactly right."""
    if received.dtype.kind not in "iu":
        return False, f"returned dtype {received.dtype}; return a Python int"
    if received.shape != expected.shape:
        return False, f"returned shape {received.shape}, expected {expected.shape}"
    if not np.array_equal(received.astype(np.float64), expected):
        return False, "not the exact integer (sizes and counts allow no rounding)"
    return True, ""


def _task2_0(b: _Builder):
    """Geometry: plain ints in, ints out (no arrays), each compared exactly."""
    rng = b.rng

    def calls(c, fn, arg_lists, raises=False):
        for i, args in enumerate(arg_lists):
            step = {"call": f"geometry.{fn}", "as": f"r{i}", "args": args}
            if raises:
                step["raises"] = "ValueError"
            c.steps.append(step)
            c.outputs.append({"name": f"{fn}_{i}", "r": [f"r{i}"]})
            c.checks[f"{fn}_{i}"] = exact

    def tiling(max_size=64):
        while True:
            k, s, p = int(rng.integers(1, 12)), int(rng.integers(1, 5)), int(rng.integers(0, 4))
            sizes = [n for n in range(1, max_size + 1) if n + 2 * p >= k and (n + 2 * p - k) % s == 0]
            if sizes:
                return int(rng.choice(sizes)), k, s, p

    geoms = [tiling() for _ in range(6)]
    c, _ = b.new("task2_0", "conv_output_size, 6 geometries that tile (strides 1-4, pads 0-3)", "float64")
    calls(c, "conv_output_size", [[{"v": n}, {"v": k}, {"v": s}, {"v": p}] for n, k, s, p in geoms])

    bad = []
    while len(bad) < 3:
        n, k, s, p = int(rng.integers(5, 64)), int(rng.integers(1, 8)), int(rng.integers(2, 5)), int(rng.integers(0, 3))
        if (n + 2 * p - k) % s:
            bad.append([{"v": n}, {"v": k}, {"v": s}, {"v": p}])
    c, _ = b.new("task2_0", "conv_output_size raises ValueError, 3 strides that do not tile", "float64")
    calls(c, "conv_output_size", bad, raises=True)

    c, _ = b.new("task2_0", "conv_param_count: square and (HH, WW) kernels, with and without bias", "float64")
    counts = []
    for bias in (True, False, True):
        C, F = int(rng.integers(1, 130)), int(rng.integers(1, 130))
        HH, WW = (int(v) for v in rng.integers(1, 8, size=2))
        counts.append([{"v": C}, {"v": F}, {"t": [{"v": HH}, {"v": WW}]}, {"v": bias}])
        counts.append([{"v": C}, {"v": F}, {"v": HH}, {"v": bias}])
    calls(c, "conv_param_count", counts)

    c, _ = b.new("task2_0", "conv_macs: 4 layers (strides, pads, non-square kernels)", "float64")
    macs = []
    for _ in range(4):
        n, k, s, p = tiling(48)
        C, F = int(rng.integers(1, 65)), int(rng.integers(1, 65))
        kw = int(rng.integers(1, 8))
        widths = [m for m in range(1, 49) if m + 2 * p >= kw and (m + 2 * p - kw) % s == 0]
        m = int(rng.choice(widths)) if widths else n
        kernel = {"t": [{"v": k}, {"v": kw}]} if widths else {"v": k}
        macs.append([{"t": [{"v": C}, {"v": n}, {"v": m}]}, {"v": F}, kernel, {"v": s}, {"v": p}])
    calls(c, "conv_macs", macs)

    c, _ = b.new("task2_0", "receptive_field: 4 stacks of conv and pool layers (strides 1-3)", "float64")
    stacks = []
    for depth in (1, 3, 5, 7):
        layers = [{"t": [{"v": int(rng.integers(1, 8))}, {"v": int(rng.integers(1, 4))}]} for _ in range(depth)]
        stacks.append([{"l": layers}])
    calls(c, "receptive_field", stacks)


def _conv_label(fn, dtype, N, C, H, W, F, HH, WW, stride, pad):
    return (f"{fn}, {dtype}, input {N}x{C}x{H}x{W}, {F} filters, kernel {HH}x{WW}, "
            f"stride {stride}, pad {pad}")


def _task2_1(b: _Builder):
    for dtype in ("float64", "float32"):
        N, dims, M = int(b.rng.integers(2, 5)), tuple(int(d) for d in b.rng.integers(2, 5, size=2)), 5
        c, arr = b.new("task2_1", f"affine_forward/backward, {dtype}, x {N}x{dims[0]}x{dims[1]}, "
                       f"{M} outputs", dtype)
        D = dims[0] * dims[1]
        c.steps = [{"call": "layers.affine_forward", "as": "f",
                    "args": [arr("x", (N, *dims)), arr("w", (D, M)), arr("b", (M,))]},
                   {"call": "layers.affine_backward", "as": "g",
                    "args": [arr("dout", (N, M)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}, {"name": "dx", "r": ["g", 0]},
                     {"name": "dw", "r": ["g", 1]}, {"name": "db", "r": ["g", 2]}]

        c, arr = b.new("task2_1", f"relu_forward/backward, {dtype}, x {N}x{M}x3", dtype)
        c.steps = [{"call": "layers.relu_forward", "as": "f", "args": [arr("x", (N, M, 3))]},
                   {"call": "layers.relu_backward", "as": "g",
                    "args": [arr("dout", (N, M, 3)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}, {"name": "dx", "r": ["g"]}]

        K = int(b.rng.integers(3, 8))
        c, arr = b.new("task2_1", f"softmax_loss, {dtype}, {N + 3} examples, {K} classes", dtype)
        c.steps = [{"call": "layers.softmax_loss", "as": "f",
                    "args": [arr("x", (N + 3, K), scale=3.0), arr("y", (N + 3,), K, "labels")]}]
        c.outputs = [{"name": "loss", "r": ["f", 0]}, {"name": "dx", "r": ["f", 1]}]


def _conv_cases(b: _Builder, task: str, fn: str, backward: bool, dtypes, max_hw, N, C, F):
    for dtype in dtypes:
        stride, pad, HH, WW, H, W = b.odd_conv(max_hw)
        label = _conv_label(fn.split(".")[1], dtype, N, C, H, W, F, HH, WW, stride, pad)
        c, arr = b.new(task, label, dtype)
        H_out, W_out = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
        x, w, bb = arr("x", (N, C, H, W)), arr("w", (F, C, HH, WW)), arr("b", (F,))
        param = {"v": {"stride": stride, "pad": pad}}
        if not backward:
            c.steps = [{"call": f"{fn}", "as": "f", "args": [x, w, bb, param]}]
            c.outputs = [{"name": "out", "r": ["f", 0]}]
        elif fn.startswith("layers."):  # the naive cache is documented: (x, w, b, conv_param)
            c.steps = [{"call": f"{fn}", "as": "g", "args": [
                arr("dout", (N, F, H_out, W_out)), {"t": [x, w, bb, param]}]}]
        else:  # a fast cache holds more (the columns): it comes from the fast forward pass
            c.steps = [{"call": fn.replace("backward", "forward"), "as": "f", "args": [x, w, bb, param]},
                       {"call": f"{fn}", "as": "g", "args": [
                           arr("dout", (N, F, H_out, W_out)), {"r": ["f", 1]}]}]
        if backward:
            c.outputs = [{"name": "dx", "r": ["g", 0]}, {"name": "dw", "r": ["g", 1]},
                         {"name": "db", "r": ["g", 2]}]


def _pool_cases(b: _Builder, task: str, fwd: str, bwd: str, dtypes, max_hw, N, C):
    for dtype in dtypes:
        ph, pw, stride, H, W = b.pool_geometry(max_hw)
        H_out, W_out = 1 + (H - ph) // stride, 1 + (W - pw) // stride
        tag = f"{dtype}, input {N}x{C}x{H}x{W}, window {ph}x{pw}, stride {stride}"
        c, arr = b.new(task, f"{fwd.split('.')[1]}, {tag}", dtype)
        x = arr("x", (N, C, H, W))
        param = {"v": {"pool_height": ph, "pool_width": pw, "stride": stride}}
        c.steps = [{"call": fwd, "as": "f", "args": [x, param]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}]
        c, arr = b.new(task, f"{bwd.split('.')[1]}, {tag}", dtype)
        x = arr("x", (N, C, H, W))
        if bwd.startswith("layers."):  # the naive cache is documented: (x, pool_param)
            c.steps = [{"call": bwd, "as": "g", "args": [
                arr("dout", (N, C, H_out, W_out)), {"t": [x, param]}]}]
        else:  # a fast cache holds more (the argmax): it comes from the fast forward pass
            c.steps = [{"call": fwd, "as": "f", "args": [x, param]},
                       {"call": bwd, "as": "g", "args": [
                           arr("dout", (N, C, H_out, W_out)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "dx", "r": ["g"]}]
    # Ties: windows of a ReLU output share their max (often 0); the gradient goes to the first
    # max in row-major order, never to every tied one.
    ph, pw, stride, H, W = b.pool_geometry(max_hw, min_window=2)
    H_out, W_out = 1 + (H - ph) // stride, 1 + (W - pw) // stride
    c, arr = b.new(task, f"{bwd.split('.')[1]}, float64, ties (small integers, mostly 0), input "
                   f"{N}x{C}x{H}x{W}, window {ph}x{pw}, stride {stride}", "float64")
    x = arr("x", (N, C, H, W))
    c.inputs[x["a"]] = np.maximum(np.round(c.inputs[x["a"]]), 0.0)
    param = {"v": {"pool_height": ph, "pool_width": pw, "stride": stride}}
    c.steps = [{"call": fwd, "as": "f", "args": [x, param]},
               {"call": bwd, "as": "g", "args": [arr("dout", (N, C, H_out, W_out)), {"r": ["f", 1]}]}]
    c.outputs = [{"name": "out", "r": ["f", 0]}, {"name": "dx", "r": ["g"]}]


def _task2_7(b: _Builder):
    for dtype in ("float64", "float32"):
        N, D, M = 3, 6, 4
        c, arr = b.new("task2_7", f"affine_relu_forward/backward, {dtype}", dtype)
        c.steps = [{"call": "layer_utils.affine_relu_forward", "as": "f",
                    "args": [arr("x", (N, 2, 3)), arr("w", (D, M)), arr("b", (M,))]},
                   {"call": "layer_utils.affine_relu_backward", "as": "g",
                    "args": [arr("dout", (N, M)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dw", "db"))]

    N, C, H, W, F = 2, 3, 8, 6, 4
    conv = {"v": {"stride": 1, "pad": 1}}
    pool = {"v": {"pool_height": 2, "pool_width": 2, "stride": 2}}
    for dtype in ("float64", "float32"):
        c, arr = b.new("task2_7", f"conv_relu_forward/backward, {dtype}, input {N}x{C}x{H}x{W}, "
                       "kernel 3x3, stride 1, pad 1", dtype)
        c.steps = [{"call": "layer_utils.conv_relu_forward", "as": "f",
                    "args": [arr("x", (N, C, H, W)), arr("w", (F, C, 3, 3)), arr("b", (F,)), conv]},
                   {"call": "layer_utils.conv_relu_backward", "as": "g",
                    "args": [arr("dout", (N, F, H, W)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dw", "db"))]

        c, arr = b.new("task2_7", f"conv_relu_pool_forward/backward, {dtype}, input "
                       f"{N}x{C}x{H}x{W}, kernel 3x3, 2x2 pool", dtype)
        c.steps = [{"call": "layer_utils.conv_relu_pool_forward", "as": "f",
                    "args": [arr("x", (N, C, H, W)), arr("w", (F, C, 3, 3)), arr("b", (F,)),
                             conv, pool]},
                   {"call": "layer_utils.conv_relu_pool_backward", "as": "g",
                    "args": [arr("dout", (N, F, H // 2, W // 2)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dw", "db"))]

    dtype = "float64"
    c, arr = b.new("task2_7", f"conv_bn_relu_forward/backward, {dtype}, train mode", dtype)
    c.steps = [{"call": "layer_utils.conv_bn_relu_forward", "as": "f",
                "args": [arr("x", (N, C, H, W)), arr("w", (F, C, 3, 3)), arr("b", (F,)),
                         arr("gamma", (F,)), arr("beta", (F,)), conv,
                         {"v": {"mode": "train", "eps": 1e-5, "momentum": 0.9}}]},
               {"call": "layer_utils.conv_bn_relu_backward", "as": "g",
                "args": [arr("dout", (N, F, H, W)), {"r": ["f", 1]}]}]
    c.outputs = [{"name": "out", "r": ["f", 0]}] + [
        {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dw", "db", "dgamma", "dbeta"))]


def _task2_8(b: _Builder):
    for dtype, reg in (("float64", 0.0), ("float64", 0.7), ("float32", 0.3)):
        C, H, W = 3, int(b.rng.choice([6, 8, 10])), int(b.rng.choice([6, 8, 12]))
        F, fs, hidden, classes, N = 3, int(b.rng.choice([3, 5])), 7, 5, 4
        c, arr = b.new("task2_8", f"ThreeLayerConvNet.loss, {dtype}, reg {reg}, input {C}x{H}x{W}, "
                       f"{F} filters {fs}x{fs}, hidden {hidden}, {classes} classes", dtype)
        shapes = {"W1": (F, C, fs, fs), "b1": (F,), "W2": (F * (H // 2) * (W // 2), hidden),
                  "b2": (hidden,), "W3": (hidden, classes), "b3": (classes,)}
        c.steps = [{"call": "cnn.ThreeLayerConvNet", "as": "m", "kwargs": {
            "input_dim": {"v": [C, H, W]}, "num_filters": {"v": F}, "filter_size": {"v": fs},
            "hidden_dim": {"v": hidden}, "num_classes": {"v": classes},
            "weight_scale": {"v": 1e-2}, "reg": {"v": reg}, "dtype": {"dt": dtype}}}]
        init_outputs = [{"name": f"init_{k}_shape", "r": ["m", ".params", k], "shape": True}
                        for k in shapes]
        for k, shape in shapes.items():
            c.steps.append({"set": ["m", ".params", k], "value": arr(k, shape, scale=0.3)})
        X, y = arr("X", (N, C, H, W)), arr("y", (N,), classes, "labels")
        c.steps += [{"method": ["m", "loss"], "as": "s", "args": [X]},
                    {"method": ["m", "loss"], "as": "L", "args": [X, y]}]
        c.outputs = init_outputs + [{"name": "scores", "r": ["s"]}, {"name": "loss", "r": ["L", 0]}] + [
            {"name": f"d{k}", "r": ["L", 1, k]} for k in shapes]


def _task2_10(b: _Builder):
    for dtype in ("float64", "float32"):
        N, D = int(b.rng.integers(4, 9)), int(b.rng.integers(3, 7))
        c, arr = b.new("task2_10", f"batchnorm_forward/backward (train), {dtype}, x {N}x{D}", dtype)
        bn = {"v": {"mode": "train", "eps": 1e-5, "momentum": 0.8}}
        c.steps = [{"call": "layers.batchnorm_forward", "as": "f", "args": [
                       arr("x", (N, D), scale=2.0), arr("gamma", (D,)), arr("beta", (D,)), bn]},
                   {"call": "layers.batchnorm_backward", "as": "g",
                    "args": [arr("dout", (N, D)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]},
                     {"name": "running_mean", "arg": ["f", 3, "running_mean"]},
                     {"name": "running_var", "arg": ["f", 3, "running_var"]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dgamma", "dbeta"))]

        c, arr = b.new("task2_10", f"batchnorm_forward (test mode), {dtype}, x {N}x{D}", dtype)
        bn = {"d": {"mode": {"v": "test"}, "eps": {"v": 1e-5}, "momentum": {"v": 0.9},
                    "running_mean": arr("rm", (D,)), "running_var": arr("rv", (D,), 0.1)}}
        c.inputs[f"{c.id}_rv"] = (np.abs(c.inputs[f"{c.id}_rv"]) + 0.5).astype(dtype)
        c.steps = [{"call": "layers.batchnorm_forward", "as": "f", "args": [
            arr("x", (N, D)), arr("gamma", (D,)), arr("beta", (D,)), bn]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}]

        N, C, H, W = 3, int(b.rng.integers(2, 5)), int(b.rng.integers(3, 6)), int(b.rng.integers(3, 6))
        c, arr = b.new("task2_10", f"spatial_batchnorm_forward/backward (train), {dtype}, "
                       f"x {N}x{C}x{H}x{W}", dtype)
        bn = {"v": {"mode": "train", "eps": 1e-5, "momentum": 0.9}}
        c.steps = [{"call": "layers.spatial_batchnorm_forward", "as": "f", "args": [
                       arr("x", (N, C, H, W), scale=3.0), arr("gamma", (C,)), arr("beta", (C,)), bn]},
                   {"call": "layers.spatial_batchnorm_backward", "as": "g",
                    "args": [arr("dout", (N, C, H, W)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dgamma", "dbeta"))]


def _task2_11(b: _Builder):
    for dtype, G, C in (("float64", 2, 6), ("float32", 3, 6), ("float64", 1, 4)):
        N, H, W = int(b.rng.integers(2, 4)), int(b.rng.integers(3, 6)), int(b.rng.integers(3, 6))
        c, arr = b.new("task2_11", f"spatial_groupnorm_forward/backward, {dtype}, "
                       f"x {N}x{C}x{H}x{W}, G={G}", dtype)
        c.steps = [{"call": "layers.spatial_groupnorm_forward", "as": "f", "args": [
                       arr("x", (N, C, H, W), scale=2.0), arr("gamma", (1, C, 1, 1)),
                       arr("beta", (1, C, 1, 1)), {"v": G}, {"v": {"eps": 1e-5}}]},
                   {"call": "layers.spatial_groupnorm_backward", "as": "g",
                    "args": [arr("dout", (N, C, H, W)), {"r": ["f", 1]}]}]
        c.outputs = [{"name": "out", "r": ["f", 0]}] + [
            {"name": n, "r": ["g", i]} for i, n in enumerate(("dx", "dgamma", "dbeta"))]


def _reference_module(name: str):
    import importlib

    return importlib.import_module(f"cs_layers.{name}")


def build_suite(seed: bytes, tasks=None) -> Suite:
    """Draw the hidden cases from the secret seed and compute the reference outputs.

    Inputs:
    - seed: secret bytes (e.g. os.urandom(16)); same seed -> same suite
    - tasks: optional subset of MODULE_TASKS (default all)

    Returns a Suite whose cases hold inputs, plan steps, expected outputs and
    tolerances. Naive-layer inputs stay small (at most 9x9 images) so that
    grading one submission costs well under a second of CPU.
    """
    b = _Builder(np.random.default_rng(0))
    both, three = ("float64", "float32"), ("float64", "float32", "float64")
    wanted = set(tasks or MODULE_TASKS + TORCH_TASKS)
    torch_wanted = sorted(wanted & set(TORCH_TASKS))
    wanted -= set(TORCH_TASKS)
    builders = {
        "task2_0": _task2_0,
        "task2_1": _task2_1,
        "task2_2": lambda b: _conv_cases(b, "task2_2", "layers.conv_forward_naive", False,
                                         three, 9, 2, 3, 4),
        "task2_3": lambda b: _conv_cases(b, "task2_3", "layers.conv_backward_naive", True,
                                         three, 8, 2, 2, 3),
        "task2_4": lambda b: _pool_cases(b, "task2_4", "layers.max_pool_forward_naive",
                                         "layers.max_pool_backward_naive", both, 9, 2, 3),
        "task2_5": lambda b: (_conv_cases(b, "task2_5", "fast_layers.conv_forward_fast", False,
                                          three, 16, 4, 3, 8),
                              _conv_cases(b, "task2_5", "fast_layers.conv_backward_fast", True,
                                          three, 16, 4, 3, 8)),
        "task2_6": lambda b: _pool_cases(b, "task2_6", "fast_layers.max_pool_forward_fast",
                                         "fast_layers.max_pool_backward_fast", three, 16, 4, 3),
        "task2_7": _task2_7,
        "task2_8": _task2_8,
        "task2_10": _task2_10,
        "task2_11": _task2_11,
    }
    unknown = wanted - set(builders)
    if unknown:
        raise ValueError(f"build_suite: unknown tasks {sorted(unknown)}; choose from {MODULE_TASKS}")
    for task in MODULE_TASKS:
        if task in wanted:  # one stream per task: a subset of tasks draws the same cases
            digest = hashlib.sha256(bytes(seed) + b"/" + task.encode()).digest()
            b.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
            builders[task](b)
    for case in b.cases:
        raw = worker.run_case(case.plan(), case.inputs, _reference_module)
        case.expected = {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}
    suite = Suite(b.cases, dict(TASK_POINTS))
    if torch_wanted:
        from grading import torch_cases  # imports torch (grader side only)

        suite.torch = torch_cases.build_suite(seed, torch_wanted)
    return suite


# ---------------------------------------------------------------- running a submission
def _copy_submission(student_dir: Path, pkg: Path) -> set[str]:
    """Copy only the expected cs_layers/*.py names (regular files); returns the module names.

    A given module (no student region: course.py, shapes.py, ...) that the submission lacks is
    taken from the instructor's copy, so a partial submission still imports; a missing student
    module stays missing and its tasks are graded as such.
    """
    src = student_dir / "cs_layers" if (student_dir / "cs_layers").is_dir() else student_dir
    reference = Path(cs_layers.__file__).parent
    allowed = sorted(p.name for p in reference.glob("*.py"))
    student_modules = {f"{t.file}.py" for t in course.TASKS if t.file}
    pkg.mkdir(parents=True)
    present = set()
    for name in allowed:
        f = src / name
        try:
            st = os.lstat(f)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # links and folders are never followed
        shutil.copyfile(f, pkg / name, follow_symlinks=False)
        os.chmod(pkg / name, 0o444)
        present.add(name[:-3])
    for name in allowed:
        if name not in student_modules and not (pkg / name).exists():
            shutil.copyfile(reference / name, pkg / name)
            os.chmod(pkg / name, 0o444)
    if not (pkg / "__init__.py").exists():
        (pkg / "__init__.py").write_text("")  # a regular package: never merged with another copy
        os.chmod(pkg / "__init__.py", 0o444)
    return present


def _site_packages() -> list[str]:
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))


def _read_json(path: Path) -> dict | None:
    """A small status file written by the worker (untrusted): dict, or None when absent.

    Read through grading.safeio: a FIFO, device, link, huge or deeply nested file is an
    "error" that blames the submission, and never blocks or crashes the grader.
    """
    try:
        data = safeio.load_json(path, MAX_STATUS_BYTES)
    except safeio.Unsafe as err:
        if not os.path.lexists(path):
            return None
        return {"kind": "error", "message": f"the worker's status file is unusable: {err} "
                                           "(did your code write into outputs/?)"}
    if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
        return {"kind": "error", "message": "the worker wrote an unreadable status "
                                            "(did your code write into outputs/?)"}
    msg = data.get("message", "")
    return {"kind": data["kind"][:40], "message": msg[:400] if isinstance(msg, str) else ""}


def _load_output(path: Path, expected: np.ndarray) -> tuple[np.ndarray | None, str]:
    """Load a worker output as data: regular file, bounded size, no pickle, never blocks."""
    if not os.path.lexists(path):
        return None, "no output was written"
    try:
        return safeio.load_npy(path, 16 * expected.size + 4096), ""
    except safeio.Unsafe as err:
        return None, str(err)


def compare(received: np.ndarray, expected: np.ndarray, tol: float) -> tuple[bool, str]:
    """(ok, message) for one output; the message never shows values."""
    if received.dtype.kind != "f":
        return False, f"returned dtype {received.dtype}; return a floating-point array"
    if received.shape != expected.shape:
        return False, f"returned shape {received.shape}, expected {expected.shape}"
    if not np.all(np.isfinite(received)):
        bad = int(np.size(received) - np.count_nonzero(np.isfinite(received)))
        return False, f"contains {bad} NaN/inf values"
    errors = relative_error(received, expected)  # the public checks' definition
    err = float(np.max(errors, initial=0.0))
    if err <= tol:
        return True, ""
    worst = np.unravel_index(int(np.argmax(errors)), errors.shape) if errors.ndim else ()
    where = f" (worst element at index {tuple(int(i) for i in worst)})" if worst else ""
    return False, f"relative error {err:.1e} > {tol:.0e}{where}"


def _check_case(case: Case, out_dir: Path, status: dict) -> tuple[str, str]:
    """(status, message) of one finished case, from the arrays alone."""
    kind = status["kind"]
    said = scrub.worker_message(status["message"])  # the student's text: never trusted raw
    if kind == "missing":
        return "missing", f"not implemented yet ({said})"
    if kind in ("error", "memory", "rejected"):
        return kind, said or kind
    if kind != "ok":
        return "error", f"the worker reported an unknown status {kind[:20]!r}"
    problems = []
    for name, exp in case.expected.items():
        arr, why = _load_output(out_dir / f"{case.id}__{name}.npy", exp)
        if arr is None:
            return "rejected", f"{name}: {why}"
        if name.endswith("_shape"):
            if arr.dtype.kind not in "iu" or arr.shape != exp.shape or not np.array_equal(arr, exp):
                shape = tuple(arr.tolist()) if arr.ndim == 1 and arr.size < 8 else "?"
                problems.append(f"{name[5:-6]} has shape {shape}, expected {tuple(int(v) for v in exp)}")
            continue
        ok, why = case.checks.get(name, compare)(arr, exp, case.tol)
        if not ok:
            problems.append(f"{name}: {why}")
    if problems:
        return "failed", "; ".join(problems[:3])
    return "passed", ""


def _prepare_workdir(workdir: Path, student_dir: Path, suite: Suite) -> set[str]:
    workdir = Path(workdir).resolve()
    present = _copy_submission(Path(student_dir), workdir / "pkg" / "cs_layers")
    inputs = workdir / "inputs"
    inputs.mkdir()
    for case in suite.cases:
        for name, value in case.inputs.items():
            np.save(inputs / f"{name}.npy", value, allow_pickle=False)
    shutil.copyfile(worker.__file__, workdir / "worker.py")
    shutil.copyfile(Path(worker.__file__).with_name("torch_probes.py"), workdir / "torch_probes.py")
    # The given code of every task runs on the instructor's copies of these (see worker.py).
    (workdir / "reference").mkdir()
    for name in worker.REFERENCE_MODULES:
        shutil.copyfile(Path(cs_layers.__file__).with_name(f"{name}.py"), workdir / "reference" / f"{name}.py")
        os.chmod(workdir / "reference" / f"{name}.py", 0o444)
    # Root-owned, world-writable, sticky: the sandbox user can add files but cannot remove,
    # rename or swap the folders (or the files of an earlier run) for links.
    (workdir / "outputs" / "status").mkdir(parents=True)
    for d in (workdir / "outputs", workdir / "outputs" / "status"):
        os.chmod(d, 0o1777)
    for p in (workdir / "worker.py", workdir / "torch_probes.py", *inputs.iterdir()):
        os.chmod(p, 0o444)
    for d in (inputs, workdir / "pkg", workdir / "pkg" / "cs_layers", workdir / "reference"):
        os.chmod(d, 0o555)
    return present


def _run_worker(workdir: Path, cases: list[Case], limits: Limits, case_wall_s: float):
    plan = {"site_packages": _site_packages(), "cases": [c.plan() for c in cases]}
    plan_path = workdir / "plan.json"
    if plan_path.exists():
        os.chmod(plan_path, 0o644)
    plan_path.write_text(json.dumps(plan))
    os.chmod(plan_path, 0o444)
    argv = [sys.executable, "-I", "-S", "-B", str(workdir / "worker.py"), str(workdir)]
    status_dir = workdir / "outputs" / "status"
    items = {c.id for c in cases} | {f"import-{m}" for c in cases for m in worker.case_modules(c.plan())}
    return run_sandboxed(argv, workdir=workdir, limits=limits, writable=(),
                         watchdog=_watchdog(status_dir, case_wall_s, items))


def _watchdog(status_dir: Path, case_wall_s: float, items=None):
    """Kill the worker when one item (a case or an import) runs longer than case_wall_s.

    Trusts nothing the sandbox user can change: not mtimes (a student could keep touching
    a .start file), only the grader's own clock. The clock restarts when an expected item's
    .start file appears for the first time; each item restarts it at most once, so a run
    lasts at most (items + 1) x case_wall_s however the files are played with (and the
    submission's deadline bounds it anyway).
    """
    seen: set[str] = set()
    last = [time.monotonic()]

    def check() -> str | None:
        try:
            names = os.listdir(status_dir)
        except OSError:
            names = []
        for n in names:
            item = n[:-6] if n.endswith(".start") else None
            if item and item not in seen and (items is None or item in items):
                seen.add(item)
                last[0] = time.monotonic()
        if time.monotonic() - last[0] > case_wall_s:
            return f"one case ran longer than {case_wall_s:g} s"
        return None
    return check


def _in_flight(status_dir: Path) -> str | None:
    """The item that was started but never finished (a case id or 'import-<module>')."""
    try:
        names = os.listdir(status_dir)
    except OSError:
        return None
    started = {n[:-6] for n in names if n.endswith(".start")}
    done = {n[:-5] for n in names if n.endswith(".json")}
    left = sorted(started - done, key=lambda n: (not n.startswith("import-"), n))
    return left[0] if left else None  # an import in flight is inside the case in flight


def grade_module(student_dir: Path, suite: Suite, *, workdir: Path, limits: Limits | None = None,
                 case_wall_s: float = CASE_WALL_S, deadline: float | None = None) -> list[TaskResult]:
    """Grade one student's cs_layers on the suite; one TaskResult per module task.

    Inputs:
    - student_dir: the unpacked submission (holding cs_layers/*.py, or the .py files)
    - suite: from build_suite
    - workdir: an empty folder for this student only (mounted into the sandbox)
    - limits: sandbox limits per worker run (default Limits())
    - case_wall_s: the most one case or one module import may take
    - deadline: time.monotonic() by which everything must be done (the submission's
      budget); cases not finished by then are "timeout"

    The worker runs all cases in one sandboxed process; after a crash or a
    timeout it restarts from the next unfinished case (skipping the rest of a
    task that timed out or ran out of memory, and every case of a module whose
    import hung), so one bad function costs only its own task.
    """
    limits = limits or MODULE_LIMITS
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    present = _prepare_workdir(workdir, student_dir, suite)
    out_dir, status_dir = workdir / "outputs", workdir / "outputs" / "status"
    verdicts: dict[str, tuple[str, str]] = {}
    for case in suite.cases:
        module = TASK_FILES[case.task]
        needed = worker.case_modules(case.plan())
        absent = sorted(m for m in needed | {module} if m not in present)
        if absent:
            verdicts[case.id] = ("missing", f"cs_layers/{absent[0]}.py is not in the submission")
    pending = [c for c in suite.cases if c.id not in verdicts]
    restarts = 0
    while pending:
        if restarts > MAX_RESTARTS:
            for c in pending:
                verdicts[c.id] = ("error", "not run: the worker crashed too many times")
            break
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            for c in pending:
                verdicts[c.id] = ("timeout", OUT_OF_TIME)
            break
        run_limits = limits if left is None or left >= limits.wall_s else \
            dataclasses.replace(limits, wall_s=left)
        run = _run_worker(workdir, pending, run_limits, case_wall_s)
        _refuse_links(out_dir, status_dir)
        for c in pending:
            st = _read_json(status_dir / f"{c.id}.json")
            if st is not None:
                verdicts[c.id] = _check_case(c, out_dir, st)
        pending = [c for c in pending if c.id not in verdicts]
        if not pending:
            break
        if deadline is not None and time.monotonic() >= deadline:
            for c in pending:
                verdicts[c.id] = ("timeout", OUT_OF_TIME)
            break
        item = _in_flight(status_dir)
        kind = {"ok": "error", "crash": "error"}.get(run.status, run.status)
        why = {"timeout": "ran past the time limit", "memory": "ran out of memory",
               "error": "the worker process died (os._exit, a crash, or a signal)"}[kind]
        if run.status == "ok":
            why = "the worker exited without running this case (sys.exit at import?)"
        if item is not None and item.startswith("import-"):
            mod = item[len("import-"):]
            for c in pending:
                if mod in worker.case_modules(c.plan()):
                    verdicts[c.id] = (kind, f"importing cs_layers/{mod}.py: {why}")
        elif item is not None:
            failed = next((c for c in pending if c.id == item), None)
            if failed is not None:
                verdicts[failed.id] = (kind, why)
                if kind in ("timeout", "memory"):
                    for c in pending:
                        if c.task == failed.task and c.id not in verdicts:
                            verdicts[c.id] = (kind, f"not run after an earlier case of this task {why}")
        else:  # died before starting any case (e.g. the interpreter failed to start)
            for c in pending:
                verdicts[c.id] = ("error", f"the worker did not start ({run.status}); "
                                  "tell the instructor: " + scrub.text(run.output_tail[-200:]))
        pending = [c for c in pending if c.id not in verdicts]
        _clear_status(status_dir)
        restarts += 1
    return [_task_result(task, suite, verdicts) for task in suite.tasks()]


def _refuse_links(out_dir: Path, status_dir: Path) -> None:
    """The sandbox user owns outputs/: a status 'folder' that is a link is removed, not followed."""
    for d in (status_dir,):
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            os.unlink(d)
    assert not out_dir.is_symlink(), "outputs/ sits in a root-owned folder and cannot be a link"


def _clear_status(status_dir: Path) -> None:
    for name in os.listdir(status_dir) if status_dir.is_dir() else []:
        if name.endswith(".start") or name.startswith("import-"):  # rewritten by the next run
            try:
                os.unlink(status_dir / name)
            except OSError:
                pass


def _task_result(task: str, suite: Suite, verdicts: dict) -> TaskResult:
    cases = [c for c in suite.cases if c.task == task]
    points = suite.points[task]
    tol = max(c.tol for c in cases)
    passed = sum(verdicts[c.id][0] == "passed" for c in cases)
    score = points * passed / len(cases)
    if passed == len(cases):
        return TaskResult(task, points, points, "passed",
                          f"all {len(cases)} hidden cases passed", tol)
    bad = [(verdicts[c.id], c) for c in cases if verdicts[c.id][0] != "passed"]
    status = min((v[0] for v, _ in bad), key=_SEVERITY.index)
    lines = [f"{passed}/{len(cases)} hidden cases passed."]
    for (st, msg), c in bad[:4]:
        lines.append(f"[{st}] {c.label}: {msg}")
    if len(bad) > 4:
        lines.append(f"... and {len(bad) - 4} more")
    return TaskResult(task, score, points, status, "\n".join(lines), tol)


# ---------------------------------------------------------------- task2_9: the trained model
def model_macs(model) -> int:
    """Multiply-adds of one forward pass of a ThreeLayerConvNet on one image."""
    W1, W2, W3 = (model.params[k] for k in ("W1", "W2", "W3"))
    F, C, fs, _ = W1.shape
    _, H, W = getattr(model, "input_dim", None) or (C, 32, 32)
    return int(F * C * fs * fs * H * W + W2.size + W3.size)  # 'same' conv, then two affines


@functools.lru_cache(maxsize=2)
def _heldout(name: str):
    from cs_layers.data import get_data

    data = get_data(name)
    return data["X_test"], data["y_test"]


def grade_model(npz_path: Path | None, *, data=None) -> TaskResult:
    """Grade task2_9: load the student's checkpoint into the reference net, test accuracy.

    Inputs:
    - npz_path: the student's convnet_model.npz, or None when absent
    - data: optional (X_test, y_test) to use instead of the dataset named in
      the checkpoint's metadata (tests use this)

    Never unpickles: the reference cs_layers.cnn.load_model uses
    allow_pickle=False, after a size check of the .npz members here.
    """
    task, points = MODEL_TASK, TASK_POINTS[MODEL_TASK]
    if npz_path is None or not Path(npz_path).is_file():
        return TaskResult(task, 0.0, points, "missing",
                          "assignments/convnets/convnet_model.npz is not in the submission; "
                          "run the training cells of the notebook, which save it")
    from cs_layers.cnn import load_model

    try:
        with zipfile.ZipFile(npz_path) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > MAX_MODEL_BYTES:
            return TaskResult(task, 0.0, points, "rejected",
                              f"the checkpoint unpacks to {total >> 20} MiB (limit "
                              f"{MAX_MODEL_BYTES >> 20} MiB); save only W1..b3 with save_model")
        model, meta = load_model(npz_path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as err:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the checkpoint could not be loaded: {str(err)[:300]}")
    macs = model_macs(model)
    if macs > MAX_MODEL_MACS:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the model costs {macs / 1e6:.0f} M multiply-adds per image (limit "
                          f"{MAX_MODEL_MACS / 1e6:.0f} M, about 3x the notebook's model); train "
                          "a smaller one (fewer or smaller filters, a smaller hidden layer)")
    dataset = str(meta.get("dataset", "digits"))
    if dataset not in MODEL_THRESHOLDS:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the checkpoint says dataset={dataset!r}; save it with dataset="
                          + " or ".join(repr(d) for d in MODEL_THRESHOLDS))
    threshold = MODEL_THRESHOLDS[dataset]
    if data is None:
        try:
            data = _heldout(dataset)
        except FileNotFoundError as err:
            return TaskResult(task, 0.0, points, "error",
                              f"the grading machine has no {dataset} test data; instructor: "
                              f"download it (datasets/get_datasets.sh) and regrade ({err})")
    X, y = data
    try:
        scores = np.concatenate([model.loss(X[i:i + 200]) for i in range(0, len(X), 200)])
    except (ValueError, IndexError) as err:
        return TaskResult(task, 0.0, points, "failed",
                          f"the model does not fit {dataset} images of shape "
                          f"{tuple(X.shape[1:])}: {str(err)[:200]}")
    acc = float(np.mean(np.argmax(scores, axis=1) == y))
    frac = min(1.0, max(0.0, (acc - CHANCE) / (threshold - CHANCE)))
    status = "passed" if acc >= threshold else "failed"
    return TaskResult(task, round(points * frac, 4), points, status,
                      f"held-out {dataset} test accuracy {acc:.3f} (full points at "
                      f">= {threshold:.2f}, none at <= {CHANCE:.2f})", None)
