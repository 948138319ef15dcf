"""One CIFAR-sized training epoch: cs_layers (numpy) against the same model in PyTorch.

    python -m bench.train_epoch                 # a full epoch: 49,000 images, batch 50
    python -m bench.train_epoch --fraction 0.1  # the first 10% of it, scaled up to an epoch
    python -m bench.train_epoch --fraction 0.1 --threads 1 --cpu-time  # steadier on a busy machine

Both sides train the default ThreeLayerConvNet (conv 7x7 with 32 filters, relu,
2x2 max pool, affine 100, relu, affine 10, softmax) in float32 with Adam
(learning rate 1e-3) on minibatches of 50 drawn at random from 49,000 random
3x32x32 images, with the same number of threads for numpy's BLAS and for torch.
The numpy side is cs_layers.solver.Solver; its per-epoch accuracy checks run on
100 images only, so they cost well under 1% of the epoch. Torch runs on the CPU.
Target (issue 4): numpy epoch time <= 2.5x torch's.
"""
import argparse
import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from cs_layers.cnn import ThreeLayerConvNet
from cs_layers.solver import Solver

NUM_TRAIN = 49000
BATCH_SIZE = 50
LEARNING_RATE = 1e-3
TARGET = 2.5  # numpy epoch time / torch epoch time
CLOCK = time.perf_counter  # wall clock; --cpu-time switches to time.process_time


def random_cifar(num_images, seed=0):
    """Random float32 images (num_images, 3, 32, 32) and int64 labels in [0, 10)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((num_images, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, size=num_images)
    return X, y


def numpy_epoch(X, y, X_val, y_val):
    """Seconds for Solver.train() over one pass of X (batch 50, adam)."""
    np.random.seed(0)
    model = ThreeLayerConvNet()  # the defaults: float32, 32 7x7 filters, hidden 100
    solver = Solver(model, {"X_train": X, "y_train": y, "X_val": X_val, "y_val": y_val},
                    update_rule="adam", optim_config={"learning_rate": LEARNING_RATE},
                    batch_size=BATCH_SIZE, num_epochs=1, num_train_samples=len(X_val),
                    verbose=False)
    start = CLOCK()
    solver.train()
    return CLOCK() - start, len(solver.loss_history)


def torch_epoch(X, y, iterations):
    """Seconds for `iterations` Adam steps of the same network in torch (CPU)."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 7, padding=3), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 100), torch.nn.ReLU(), torch.nn.Linear(100, 10))
    opt = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE)
    tX, ty = torch.from_numpy(X), torch.from_numpy(y)
    rng = np.random.default_rng(0)
    start = CLOCK()
    for _ in range(iterations):
        idx = torch.from_numpy(rng.integers(0, len(X), BATCH_SIZE))
        loss = torch.nn.functional.cross_entropy(net(tX[idx]), ty[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return CLOCK() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="part of the epoch to run, in (0, 1]; times are scaled to a full epoch")
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
    blas = [lib for lib in threadpool_info() if lib.get("user_api") == "blas"]
    threads = args.threads or (blas[0]["num_threads"] if blas else os.cpu_count())
    torch.set_num_threads(threads)
    num_images = max(BATCH_SIZE, int(round(NUM_TRAIN * args.fraction)))
    X, y = random_cifar(num_images)
    X_val, y_val = random_cifar(100, seed=1)
    print(f"one epoch = {NUM_TRAIN} images / batch {BATCH_SIZE} = {NUM_TRAIN // BATCH_SIZE} iterations; "
          f"running {num_images // BATCH_SIZE} of them ({args.fraction:g}), {threads} thread(s) "
          f"for numpy's BLAS and torch")
    with threadpool_limits(limits=threads, user_api="blas"):
        np_seconds, iterations = numpy_epoch(X, y, X_val, y_val)
        torch_seconds = torch_epoch(X, y, iterations)
    scale = (NUM_TRAIN // BATCH_SIZE) / iterations
    np_epoch, torch_epoch_s = np_seconds * scale, torch_seconds * scale
    ratio = np_epoch / torch_epoch_s
    print(f"{'CPU' if args.cpu_time else 'wall'} time{'':<13}{'s / epoch':>10}{'ms / iteration':>16}")
    print(f"{'cs_layers (numpy)':<22}{np_epoch:>10.1f}{1e3 * np_seconds / iterations:>16.1f}")
    print(f"{'torch (cpu)':<22}{torch_epoch_s:>10.1f}{1e3 * torch_seconds / iterations:>16.1f}")
    print(f"numpy / torch = {ratio:.2f}  (target <= {TARGET}: {'PASS' if ratio <= TARGET else 'MISS'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
