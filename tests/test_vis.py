"""cs_layers.vis: filter grids and training curves (headless)."""
import io
from types import SimpleNamespace

import numpy as np
import pytest
from matplotlib.figure import Figure

from cs_layers.vis import plot_training_history, visualize_grid


def test_grid_places_and_rescales_each_image():
    rng = np.random.default_rng(0)
    Xs = rng.standard_normal((5, 3, 4, 2))  # (N, H, W, C)
    grid = visualize_grid(Xs, ubound=1.0, padding=1)
    assert grid.shape == (3 * 4 - 1, 3 * 5 - 1, 2)  # G = ceil(sqrt(5)) = 3
    img = Xs[4]  # row 1, column 1
    expected = (img - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(grid[4:7, 5:9], expected)
    assert grid[3].max() == 0 and grid[:, 4].max() == 0  # padding rows and columns
    assert grid[8:, 10:].max() == 0  # unused cells
    assert grid.min() == 0 and grid.max() == 1.0


def test_grid_of_conv_weights_and_constant_images():
    w = np.zeros((4, 3, 7, 7))  # (F, C, HH, WW) with constant filters
    grid = visualize_grid(w.transpose(0, 2, 3, 1), padding=0)
    assert grid.shape == (14, 14, 3) and np.all(grid == 0) and np.all(np.isfinite(grid))


def test_grid_rejects_the_wrong_layout():
    with pytest.raises(ValueError, match=r"transpose\(0, 2, 3, 1\)"):
        visualize_grid(np.zeros((3, 7, 7)))


def test_training_history_plot():
    solver = SimpleNamespace(loss_history=[2.3, 2.0, 1.5, 1.2],
                             train_acc_history=[0.1, 0.5, 0.8], val_acc_history=[0.1, 0.4, 0.6])
    fig = plot_training_history(solver)
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    np.testing.assert_array_equal(ax_loss.lines[0].get_ydata(), solver.loss_history)
    assert [line.get_label() for line in ax_acc.lines] == ["train", "val"]
    np.testing.assert_array_equal(ax_acc.lines[1].get_ydata(), solver.val_acc_history)
    fig.savefig(io.BytesIO(), format="png")  # renders without a display
