"""Layer benchmark: naive vs fast (numpy) vs torch.nn.functional, one table.

    python -m bench.layers            # full run (about a minute)
    python -m bench.layers --quick    # fewer repeats, naive only where a target needs it
    python -m bench.layers --threads 1 --json results.json
    python -m bench.layers --threads 1 --cpu-time   # steadier when the machine is busy

Everything runs in one process with the same thread count for numpy's BLAS
(threadpoolctl) and torch (torch.set_num_threads). Each time is the median of
--repeats runs (at least 9 for a PASS/MISS verdict; more for a short layer, until its
block has lasted a quarter of a second), each implementation timed in
one block of runs (not alternating calls, whose idle spinning threads would get in
each other's way). The naive layers are timed on the first
few images only and scaled up linearly to the full batch (marked with *).
Run it through `make bench`, which unsets OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE so
OpenBLAS picks its kernel for this CPU.

Targets (on the 2-core course machine), each printed PASS or MISS:
- conv forward+backward, float64: fast no slower than torch (ratio <= 1.0)
- conv forward+backward, float32: fast within 2.0x of torch, on all three shapes
- max pool 2x2: backward within 3x of torch, forward+backward no slower than torch
- conv forward+backward on the first shape: fast >= 300x faster than naive
The fast backward passes get the fast forward's cache (columns, pooling argmax), as
in training; torch's backward likewise reuses what its forward saved.
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn.functional as tF
from threadpoolctl import threadpool_limits

from bench.machine import blas_threads, describe, verdict
from cs_layers import batch_chunks
from cs_layers.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from cs_layers.layers import conv_backward_naive, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive

# (name, x shape, w shape, stride, pad): the three conv shapes
CONV_CASES = [
    ("conv1", (100, 3, 31, 31), (25, 3, 3, 3), 2, 1),
    ("conv2", (64, 32, 32, 32), (64, 32, 3, 3), 1, 1),
    ("conv3", (50, 3, 32, 32), (32, 3, 7, 7), 1, 3),
]
# (name, x shape): 2x2 windows, stride 2
POOL_CASES = [
    ("pool1", (100, 3, 32, 32)),
    ("pool2", (64, 32, 32, 32)),
]
POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}
CONV_TARGET = {"float64": 1.0, "float32": 2.0}  # fast/torch, forward+backward
POOL_TARGET = {"bwd": 3.0, "fwd+bwd": 1.0}  # fast/torch
MIN_REPEATS = 9  # medians of fewer runs are printed without a PASS/MISS verdict
NAIVE_TARGET = 300.0  # naive/fast on conv1, forward+backward


CLOCK = time.perf_counter  # wall clock; --cpu-time switches to time.process_time
MIN_BLOCK_S = 0.25  # a block of runs lasts at least this long (more runs for a short layer)


def time_blocks(fns, repeats):
    """Median milliseconds of each callable in `fns` (a dict), each timed in one block of runs.

    Blocks, not alternating calls: numpy's BLAS threads and torch's threads each spin for a
    while after a call, so alternating them makes each pay for the other's idle threads.
    A block of a verdict run (repeats >= MIN_REPEATS) goes on past `repeats` runs until it
    has lasted MIN_BLOCK_S: nine runs of a 1 ms layer last 9 ms, where one busy moment of
    the machine moves the median. --quick keeps its few runs.
    """
    times = {}
    for name, fn in fns.items():
        fn()  # warm up: first-call allocations, lazy init
        runs = []
        min_block_s = MIN_BLOCK_S if repeats >= MIN_REPEATS else 0.0
        while len(runs) < repeats or sum(runs) < min_block_s:
            start = CLOCK()
            fn()
            runs.append(CLOCK() - start)
        times[name] = 1e3 * float(np.median(runs))
    return times


def time_naive(forward, backward, args, dout, param, n_images, n_total):
    """Forward and backward ms of a naive layer on n_images images, scaled to n_total."""
    sub = [a[:n_images] for a in args[:1]] + list(args[1:])
    start = CLOCK()
    _, cache = forward(*sub, param)
    mid = CLOCK()
    backward(dout[:n_images], cache)
    end = CLOCK()
    scale = 1e3 * n_total / n_images
    return (mid - start) * scale, (end - mid) * scale


def bench_conv(name, x_shape, w_shape, stride, pad, dtype, repeats, naive_images):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(x_shape).astype(dtype)
    w = (rng.standard_normal(w_shape) * 0.1).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    conv_param = {"stride": stride, "pad": pad}
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape).astype(dtype)
    tx, tw, tb = (torch.from_numpy(a).requires_grad_() for a in (x, w, b))
    tout = tF.conv2d(tx, tw, tb, stride=stride, padding=pad)
    tdout = torch.from_numpy(dout)
    ms = time_blocks({
        "fast fwd": lambda: conv_forward_fast(x, w, b, conv_param),
        "fast bwd": lambda: conv_backward_fast(dout, cache),
        "torch fwd": lambda: tF.conv2d(tx, tw, tb, stride=stride, padding=pad),
        "torch bwd": lambda: torch.autograd.grad(tout, (tx, tw, tb), tdout, retain_graph=True),
    }, repeats)
    if naive_images:
        ms["naive fwd"], ms["naive bwd"] = time_naive(conv_forward_naive, conv_backward_naive, (x, w, b),
                                                      dout, conv_param, naive_images, x_shape[0])
    label = f"{name} x{x_shape} w{w_shape} s{stride} p{pad}"
    return label, ms


def bench_pool(name, x_shape, dtype, repeats, naive_images):
    x = np.random.default_rng(0).standard_normal(x_shape).astype(dtype)
    out, cache = max_pool_forward_fast(x, POOL_PARAM)
    dout = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    tx = torch.from_numpy(x).requires_grad_()
    tout = tF.max_pool2d(tx, 2, 2)
    tdout = torch.from_numpy(dout)
    ms = time_blocks({
        "fast fwd": lambda: max_pool_forward_fast(x, POOL_PARAM),
        "fast bwd": lambda: max_pool_backward_fast(dout, cache),
        "torch fwd": lambda: tF.max_pool2d(tx, 2, 2),
        "torch bwd": lambda: torch.autograd.grad(tout, (tx,), tdout, retain_graph=True),
    }, repeats)
    if naive_images:
        ms["naive fwd"], ms["naive bwd"] = time_naive(max_pool_forward_naive, max_pool_backward_naive, (x,),
                                                      dout, POOL_PARAM, naive_images, x_shape[0])
    return f"{name} x{x_shape} 2x2 s2", ms


def rows_for(kind, label, dtype, ms, naive_images, n_total):
    """Table rows (dicts) for one case: fwd, bwd and fwd+bwd, with targets checked."""
    rows = []
    for part, keys in (("fwd", ["fwd"]), ("bwd", ["bwd"]), ("fwd+bwd", ["fwd", "bwd"])):
        fast = sum(ms[f"fast {k}"] for k in keys)
        torch_ms = sum(ms[f"torch {k}"] for k in keys)
        naive = sum(ms[f"naive {k}"] for k in keys) if "naive fwd" in ms else None
        checks = []
        if kind == "conv" and part == "fwd+bwd":
            checks.append((f"fast/torch <= {CONV_TARGET[dtype]}", fast / torch_ms <= CONV_TARGET[dtype]))
            if label.startswith("conv1") and dtype == "float64" and naive is not None:
                checks.append((f"naive/fast >= {NAIVE_TARGET:.0f}", naive / fast >= NAIVE_TARGET))
        if kind == "pool" and part in POOL_TARGET:
            checks.append((f"fast/torch <= {POOL_TARGET[part]}", fast / torch_ms <= POOL_TARGET[part]))
        rows.append({
            "case": label, "dtype": dtype, "pass": part, "naive_ms": naive, "fast_ms": fast,
            "torch_ms": torch_ms, "fast_over_torch": fast / torch_ms,
            "naive_over_fast": None if naive is None else naive / fast,
            "naive_images": naive_images if naive is not None else None, "n_images": n_total,
            "targets": [{"target": t, "met": bool(ok)} for t, ok in checks],
        })
    return rows


def print_table(rows):
    head = (f"{'case':<44} {'dtype':<7} {'pass':<7} {'naive ms':>10} {'fast ms':>9} {'torch ms':>9} "
            f"{'fast/torch':>10} {'naive/fast':>10}  target")
    print(head)
    print("-" * (len(head) + 30))
    for r in rows:
        naive = "-" if r["naive_ms"] is None else f"{r['naive_ms']:.0f}*"
        speedup = "-" if r["naive_over_fast"] is None else f"{r['naive_over_fast']:.0f}x"
        target = "; ".join(f"{t['target']}: {verdict(t['met'])}" for t in r["targets"])
        print(f"{r['case']:<44} {r['dtype']:<7} {r['pass']:<7} {naive:>10} {r['fast_ms']:>9.2f} "
              f"{r['torch_ms']:>9.2f} {r['fast_over_torch']:>10.2f} {speedup:>10}  {target}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 repeats, naive only on conv1 float64, no verdicts (for make demo)")
    parser.add_argument("--repeats", type=int, default=None,
                        help=f"timed runs per measurement (default {MIN_REPEATS}, quick 3); "
                             f"PASS/MISS needs at least {MIN_REPEATS}")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and torch (default: what numpy's BLAS uses now)")
    parser.add_argument("--naive-images", type=int, default=2,
                        help="images the naive layers are timed on (then scaled to the batch)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure process CPU time instead of wall time: steadier on a busy machine, "
                             "meaningful with --threads 1 (with more threads it adds up all threads)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    repeats = args.repeats or (3 if args.quick else MIN_REPEATS)
    if repeats < 1 or args.naive_images < 1:
        parser.error("--repeats and --naive-images must be at least 1")
    threads = args.threads or blas_threads()
    torch.set_num_threads(threads)
    batch_chunks.set_threads(threads)  # the fast pooling layers' chunk threads
    rows = []
    start = time.perf_counter()
    with threadpool_limits(limits=threads, user_api="blas"):
        for line in describe(threads):
            print(line)
        more = f" (and at least {MIN_BLOCK_S:g} s of runs)" if repeats >= MIN_REPEATS else ""
        print(f"{'CPU' if args.cpu_time else 'wall'} time, median of {repeats} repeats{more}; "
              f"* = naive timed on {args.naive_images} image(s), scaled to the full batch\n")
        for dtype in ("float64", "float32"):
            for name, x_shape, w_shape, stride, pad in CONV_CASES:
                naive = args.naive_images if (not args.quick or (name == "conv1" and dtype == "float64")) else 0
                label, ms = bench_conv(name, x_shape, w_shape, stride, pad, np.dtype(dtype), repeats, naive)
                rows += rows_for("conv", label, dtype, ms, naive, x_shape[0])
            for name, x_shape in POOL_CASES:
                naive = 0 if args.quick else args.naive_images
                label, ms = bench_pool(name, x_shape, np.dtype(dtype), repeats, naive)
                rows += rows_for("pool", label, dtype, ms, naive, x_shape[0])
    if repeats < MIN_REPEATS:  # too few runs for a verdict
        for r in rows:
            r["targets"] = []
    print_table(rows)
    checks = [t["met"] for r in rows for t in r["targets"]]
    if checks:
        print(f"\ntargets met: {sum(checks)} of {len(checks)} (timings on a shared machine are noisy; "
              f"run again before trusting a single MISS)")
    else:
        print(f"\nno PASS/MISS verdicts: {repeats} repeats < {MIN_REPEATS}; run without --quick for them")
    print(f"benchmark took {time.perf_counter() - start:.0f} s wall")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"threads": threads, "repeats": repeats, "cpu_time": args.cpu_time, "rows": rows}, f,
                      indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
