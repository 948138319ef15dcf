"""Visualisation helpers (given code): filter grids and training curves.

Both return objects instead of drawing on pyplot's global state, so they work
in notebooks (the returned figure displays itself) and in headless tests.
"""
from math import ceil, sqrt

import numpy as np
from matplotlib.figure import Figure


def visualize_grid(Xs, ubound=255.0, padding=1):
    """Tile a batch of images into one image, each rescaled to [0, ubound].

    Inputs:
    - Xs: images, shape (N, H, W, C); for conv weights (F, C, HH, WW) pass
      `w.transpose(0, 2, 3, 1)`
    - ubound: output values lie in [0, ubound] (255.0 for imshow of floats
      divided by 255 later, 1.0 for imshow directly)
    - padding: blank pixels between neighbouring images

    Returns:
    - grid: array (G * (H + padding) - padding, G * (W + padding) - padding, C)
      with G = ceil(sqrt(N)); images fill it row by row, unused cells are 0.
      A constant image maps to 0 everywhere.
    """
    Xs = np.asarray(Xs, dtype=np.float64)
    if Xs.ndim != 4:
        raise ValueError(
            f"visualize_grid: Xs must have shape (N, H, W, C), got {Xs.shape}; "
            "for conv weights (F, C, HH, WW) pass w.transpose(0, 2, 3, 1).")
    if padding < 0:
        raise ValueError(f"visualize_grid: padding must be >= 0, got {padding}.")
    N, H, W, C = Xs.shape
    G = int(ceil(sqrt(N)))
    grid = np.zeros((G * (H + padding) - padding, G * (W + padding) - padding, C))
    for i in range(N):
        r, c = divmod(i, G)
        img = Xs[i]
        low, high = img.min(), img.max()
        scaled = ubound * (img - low) / (high - low) if high > low else np.zeros_like(img)
        y0, x0 = r * (H + padding), c * (W + padding)
        grid[y0:y0 + H, x0:x0 + W] = scaled
    return grid


def plot_training_history(solver):
    """Plot the loss per iteration and the accuracies per epoch.

    Inputs:
    - solver: a trained Solver, or any object with `loss_history`,
      `train_acc_history` and `val_acc_history`

    Returns:
    - fig: a matplotlib Figure with two axes (loss; train/val accuracy)
    """
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax_loss, ax_acc = fig.subplots(2, 1)
    ax_loss.plot(solver.loss_history, "o", markersize=2, alpha=0.6)
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("training loss")
    style = "-o" if len(solver.train_acc_history) > 1 else "o"   # one point: a marker, not a line
    ax_acc.plot(solver.train_acc_history, style, label="train")
    ax_acc.plot(solver.val_acc_history, style, label="val")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("accuracy")
    ax_acc.legend(loc="lower right")
    return fig
