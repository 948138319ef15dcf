"""One CIFAR-sized training epoch: cs_layers (numpy) against the same model in PyTorch.

    python -m bench.train_epoch                 # a full epoch: 49,000 images, batch 50
    python -m bench.train_epoch --fraction 0.2  # the first 20% of it, scaled up to an epoch
    python -m bench.train_epoch --fraction 0.2 --threads 1 --cpu-time  # steadier on a busy machine

Both sides train the default ThreeLayerConvNet (conv 7x7 with 32 filters, relu,
2x2 max pool, affine 100, relu, affine 10, softmax) in float32 with Adam
(learning rate 1e-3) on minibatches of 50 drawn at random from 49,000 random
3x32x32 images, with the same number of threads for numpy's BLAS and for torch.
The numpy side runs cs_layers.solver.Solver's own update step (minibatch, loss and
gradients, Adam on every parameter); the per-epoch accuracy checks are left out (on
100 images they cost well under 1% of an epoch). Torch runs on the CPU.

The iterations are timed in --blocks blocks (default 10) per side, numpy's and
torch's blocks taking turns; the epoch time is the median block time scaled to 980
iterations. Peak memory: the peak of numpy's own allocations during training
iterations (tracemalloc, on separate untimed iterations: the target), and the
process's peak resident set size (training images, torch and both models included).
Target: numpy epoch time <= 2.5x torch's; numpy's training memory < 2 GB.
"""
import argparse
import resource
import time
import tracemalloc

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from bench.machine import blas_threads, describe, verdict
from cs_layers import batch_chunks
from cs_layers.cnn import ThreeLayerConvNet
from cs_layers.solver import Solver

NUM_TRAIN = 49000
BATCH_SIZE = 50
LEARNING_RATE = 1e-3
TARGET = 2.5  # numpy epoch time / torch epoch time
MEMORY_TARGET_MB = 2048  # numpy's own peak allocations while training
MIN_BLOCKS = 9  # medians of fewer blocks get no PASS/MISS verdict
CLOCK = time.perf_counter  # wall clock; --cpu-time switches to time.process_time


def random_cifar(num_images, seed=0):
    """Random float32 images (num_images, 3, 32, 32) and int64 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_images, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, size=num_images)
    return X, y


def numpy_solver(X, y, X_val, y_val):
    """Solver for the default ThreeLayerConvNet (float32) with Adam, batch 50."""
    np.random.seed(0)
    model = ThreeLayerConvNet()  # the defaults: float32, 32 7x7 filters, hidden 100
    return Solver(model, {"X_train": X, "y_train": y, "X_val": X_val, "y_val": y_val},
                  update_rule="adam", optim_config={"learning_rate": LEARNING_RATE},
                  batch_size=BATCH_SIZE, num_epochs=1, num_train_samples=len(X_val), verbose=False)


def torch_stepper(X, y):
    """A function running one Adam step of the same network in torch (CPU)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 7, padding=3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    rng = np.random.default_rng(0)

    def step():
        idx = torch.from_numpy(rng.integers(0, len(X), BATCH_SIZE))
        loss = torch.nn.functional.cross_entropy(net(tX[idx]), ty[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return step


def time_block(step, iterations):
    start = CLOCK()
    for _ in range(iterations):
        step()
    return CLOCK() - start


def numpy_peak_mb(solver, iterations=3):
    """Peak MiB of numpy allocations over a few training steps (tracemalloc; untimed)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(iterations):
        solver._step()
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / 2**20


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="part of the epoch to run, in (0, 1]; times are scaled to a full epoch")
    parser.add_argument("--blocks", type=int, default=10,
                        help=f"timed blocks per side (medians; PASS/MISS needs at least {MIN_BLOCKS})")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for BLAS and torch (default: what numpy's BLAS uses now)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="measure process CPU time instead of wall time: steadier on a busy machine, "
                             "meaningful with --threads 1")
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    if not 0 < args.fraction <= 1:
        parser.error(f"--fraction must be in (0, 1], got {args.fraction}")
    if args.blocks < 1:
        parser.error("--blocks must be at least 1")
    threads = args.threads or blas_threads()
    torch.set_num_threads(threads)
    batch_chunks.set_threads(threads)  # the fast pooling layers' chunk threads
    num_images = max(BATCH_SIZE, int(round(NUM_TRAIN * args.fraction)))
    X, y = random_cifar(num_images)
    X_val, y_val = random_cifar(100, seed=1)
    iterations = max(args.blocks, num_images // BATCH_SIZE)
    per_block = iterations // args.blocks
    epoch_iterations = NUM_TRAIN // BATCH_SIZE
    with threadpool_limits(limits=threads, user_api="blas"):
        for line in describe(threads):
            print(line)
        print(f"one epoch = {NUM_TRAIN} images / batch {BATCH_SIZE} = {epoch_iterations} iterations; "
              f"timing {args.blocks} blocks of {per_block} per side ({args.fraction:g} of an epoch)")
        solver = numpy_solver(X, y, X_val, y_val)
        torch_step = torch_stepper(X, y)
        solver._step(), torch_step()  # warm up
        np_blocks, torch_blocks = [], []
        start = time.perf_counter()
        for _ in range(args.blocks):
            np_blocks.append(time_block(solver._step, per_block))
            torch_blocks.append(time_block(torch_step, per_block))
        took = time.perf_counter() - start
        numpy_mb = numpy_peak_mb(solver)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np_ms, torch_ms = (1e3 * float(np.median(b)) / per_block for b in (np_blocks, torch_blocks))
    ratio = np_ms / torch_ms
    ok = args.blocks >= MIN_BLOCKS
    print(f"\n{'CPU' if args.cpu_time else 'wall'} time, median of {args.blocks} blocks"
          f"{'':<4}{'s / epoch':>10}{'ms / iteration':>16}")
    print(f"{'cs_layers (numpy)':<38}{np_ms * epoch_iterations / 1e3:>10.1f}{np_ms:>16.1f}")
    print(f"{'torch (cpu)':<38}{torch_ms * epoch_iterations / 1e3:>10.1f}{torch_ms:>16.1f}")
    print(f"numpy / torch = {ratio:.2f}  (target <= {TARGET}: "
          f"{verdict(ratio <= TARGET) if ok else f'no verdict, < {MIN_BLOCKS} blocks'})")
    print(f"numpy peak allocations while training: {numpy_mb:.0f} MiB (target < {MEMORY_TARGET_MB} MiB: "
          f"{verdict(numpy_mb < MEMORY_TARGET_MB)}); process peak RSS {rss_mb:.0f} MiB "
          f"(includes the {X.nbytes / 2**20:.0f} MiB of training images, torch and its model)")
    print(f"benchmark took {took:.0f} s wall for the timed blocks")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
