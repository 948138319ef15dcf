"""Progress bars and figures in notebooks: no bar text saved, no one-point lines."""
from types import SimpleNamespace

import pytest
from tqdm import tqdm as text_tqdm

from cs_layers import progress
from cs_layers.vis import plot_training_history


@pytest.fixture
def kernel(monkeypatch):
    monkeypatch.setattr(progress, "in_kernel", lambda: True)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    return monkeypatch


def test_headless_kernel_gets_no_bar(kernel, capsys):
    bar = progress.tqdm(range(3), desc="training")
    assert bar.disable
    list(bar)
    bar.close()
    captured = capsys.readouterr()
    assert "training" not in captured.err + captured.out


def test_jupyter_ui_kernel_gets_the_widget_bar(kernel):
    kernel.setenv("JPY_SESSION_NAME", "/home/student/ConvolutionalNetworks.ipynb")
    from tqdm.notebook import tqdm as notebook_tqdm
    bar = progress.tqdm(range(3), desc="training")  # ipywidgets comes with jupyter (requirements.txt)
    assert isinstance(bar, notebook_tqdm) or bar.disable   # no display outside a real kernel: tqdm may disable
    bar.close()


def test_terminal_bar_follows_the_tty_and_disable_wins(monkeypatch):
    monkeypatch.setattr(progress, "in_kernel", lambda: False)
    bar = progress.tqdm(range(3))
    assert type(bar) is text_tqdm
    bar.close()
    assert progress.tqdm(range(3), disable=True).disable


def test_not_in_a_kernel_under_pytest():
    assert progress.in_kernel() is False


def test_one_epoch_history_is_drawn_as_markers_not_a_line():
    solver = SimpleNamespace(loss_history=[2.3, 2.1], train_acc_history=[0.4], val_acc_history=[0.35])
    fig = plot_training_history(solver)
    acc_lines = fig.axes[1].get_lines()
    assert [line.get_linestyle() for line in acc_lines] == ["None", "None"]
    solver.train_acc_history, solver.val_acc_history = [0.1, 0.4], [0.1, 0.35]
    assert all(line.get_linestyle() == "-" for line in plot_training_history(solver).axes[1].get_lines())
