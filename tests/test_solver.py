"""cs_layers.solver: training loop, histories, best params, checkpoints, options.

Most tests use small models defined here, so they test the Solver alone; the
ConvNet tests at the end need cs_layers.cnn and its layers.
"""
import sys
import warnings

import numpy as np
import pytest

from cs_layers import solver as S
from cs_layers.solver import Solver, load_checkpoint


class SoftmaxModel:
    """Affine + softmax: scores = X.reshape(N, -1) @ W + b."""

    def __init__(self, dim, num_classes, seed=0):
        rng = np.random.default_rng(seed)
        self.params = {"W": 1e-3 * rng.standard_normal((dim, num_classes)), "b": np.zeros(num_classes)}

    def loss(self, X, y=None):
        X = X.reshape(len(X), -1)
        scores = X @ self.params["W"] + self.params["b"]  # (N, C)
        if y is None:
            return scores
        p = np.exp(scores - scores.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(p[np.arange(len(y)), y]))
        dscores = p.copy()
        dscores[np.arange(len(y)), y] -= 1
        dscores /= len(y)
        return loss, {"W": X.T @ dscores, "b": dscores.sum(axis=0)}


class DriftingModel:
    """One parameter w that every step pushes up by the learning rate (sgd).
    It predicts class 1 while w < 2.5 and class 0 after, so the validation
    accuracy (all labels 1) is best at the start and 0 at the end."""

    def __init__(self):
        self.params = {"w": np.zeros(1)}

    def loss(self, X, y=None):
        scores = np.zeros((len(X), 2))
        scores[:, 1 if self.params["w"][0] < 2.5 else 0] = 1.0
        if y is None:
            return scores
        return 1.0, {"w": -np.ones(1)}


def blobs(n, dim=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = 3 * rng.standard_normal((classes, dim))
    return centres[y] + rng.standard_normal((n, dim)), y


def small_data(n_train=50, n_val=40):
    X, y = blobs(n_train + n_val)
    return {"X_train": X[:n_train], "y_train": y[:n_train], "X_val": X[n_train:], "y_val": y[n_train:]}


def test_overfits_50_examples_with_a_softmax_model():
    np.random.seed(0)
    X = np.random.default_rng(1).standard_normal((50, 64))  # 50 points in 64-d: separable
    y = np.arange(50) % 5
    data = {"X_train": X, "y_train": y, "X_val": X[:10], "y_val": y[:10]}
    model = SoftmaxModel(64, 5)
    solver = Solver(model, data, update_rule="adam", optim_config={"learning_rate": 5e-2},
                    num_epochs=30, batch_size=25, verbose=False)
    solver.train()
    assert solver.train_acc_history[-1] == 1.0, solver.train_acc_history
    assert solver.check_accuracy(X, y) == 1.0
    assert solver.loss_history[-1] < 0.1 * solver.loss_history[0]


def test_histories_have_one_entry_per_iteration_and_per_epoch():
    solver = Solver(SoftmaxModel(20, 4), small_data(), num_epochs=3, batch_size=10, verbose=False)
    solver.train()
    assert len(solver.loss_history) == 3 * (50 // 10)
    assert len(solver.train_acc_history) == len(solver.val_acc_history) == 3 + 1
    assert solver.epoch == 3
    assert solver.best_val_acc == max(solver.val_acc_history)


def test_best_params_are_restored_at_the_end():
    data = {"X_train": np.zeros((4, 1)), "y_train": np.ones(4, int),
            "X_val": np.zeros((6, 1)), "y_val": np.ones(6, int)}
    model = DriftingModel()
    solver = Solver(model, data, update_rule="sgd", optim_config={"learning_rate": 1.0},
                    batch_size=4, num_epochs=5, verbose=False)
    solver.train()
    assert solver.val_acc_history == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    assert model.params["w"][0] == 0.0  # the first params that reached the best, not w = 5
    assert solver.check_accuracy(data["X_val"], data["y_val"]) == solver.best_val_acc == 1.0
    solver.best_params["w"][0] = 42.0
    assert model.params["w"][0] == 0.0, "best_params must be a copy, not the model's own arrays"


def test_lr_decay_is_applied_once_per_epoch():
    solver = Solver(SoftmaxModel(20, 4), small_data(), update_rule="sgd_momentum",
                    optim_config={"learning_rate": 0.1}, lr_decay=0.5, num_epochs=3,
                    batch_size=25, verbose=False)
    solver.train()
    for config in solver.optim_configs.values():
        assert config["learning_rate"] == pytest.approx(0.1 * 0.5 ** 3)
    assert solver.optim_config == {"learning_rate": 0.1}  # the caller's dict is untouched


def test_checkpoints_are_npz_atomic_and_loadable(tmp_path):
    name = str(tmp_path / "ck")
    model = SoftmaxModel(20, 4)
    solver = Solver(model, small_data(), num_epochs=2, batch_size=25, checkpoint_name=name,
                    update_rule="adam", verbose=False)
    solver.train()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck_epoch_1.npz", "ck_epoch_2.npz"]
    ck = load_checkpoint(tmp_path / "ck_epoch_2.npz")  # allow_pickle=False inside
    assert ck["epoch"] == 2 and ck["update_rule"] == "adam" and ck["batch_size"] == 25
    assert sorted(ck["params"]) == ["W", "b"]
    assert len(ck["loss_history"]) == 4 and len(ck["val_acc_history"]) == 3
    with np.load(tmp_path / "ck_epoch_1.npz", allow_pickle=False) as f:
        assert "params/W" in f.files


def test_checkpoint_write_failure_leaves_no_temp_file(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")
    monkeypatch.setattr(S.np, "savez", broken)
    solver = Solver(SoftmaxModel(20, 4), small_data(), num_epochs=1, batch_size=25,
                    checkpoint_name=str(tmp_path / "ck"), verbose=False)
    with pytest.raises(OSError):
        solver.train()
    assert list(tmp_path.iterdir()) == []


def test_unknown_kwargs_are_listed_with_the_accepted_ones():
    with pytest.raises(ValueError) as info:
        Solver(SoftmaxModel(20, 4), small_data(), num_epoch=3, learning_rate=1e-3)
    msg = str(info.value)
    assert "['learning_rate', 'num_epoch']" in msg and "num_epochs" in msg and "optim_config" in msg


def test_unknown_update_rule_is_rejected():
    with pytest.raises(ValueError, match="unknown update_rule 'adagrad'.*adam"):
        Solver(SoftmaxModel(20, 4), small_data(), update_rule="adagrad")


def test_a_callable_update_rule_is_used():
    calls = []

    def rule(w, dw, config):
        calls.append(w.shape)
        return w - 0.1 * dw, config
    solver = Solver(SoftmaxModel(20, 4), small_data(), update_rule=rule, num_epochs=1,
                    batch_size=25, verbose=False)
    solver.train()
    assert len(calls) == 2 * 2  # two parameters, two iterations


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "batch_size must be a positive integer"),
    ({"num_epochs": 2.5}, "num_epochs must be a positive integer"),
])
def test_bad_numbers_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Solver(SoftmaxModel(20, 4), small_data(), **kwargs)


def test_bad_data_is_rejected():
    data = small_data()
    del data["y_val"]
    with pytest.raises(ValueError, match=r"missing \['y_val'\].*get_data"):
        Solver(SoftmaxModel(20, 4), data)
    data = small_data()
    data["y_train"] = data["y_train"][:-1]
    with pytest.raises(ValueError, match="X_train has 50 examples and y_train has 49"):
        Solver(SoftmaxModel(20, 4), data)


def test_nan_loss_stops_training_with_a_warning():
    class Exploding(SoftmaxModel):
        def loss(self, X, y=None):
            out = super().loss(X, y)
            return out if y is None else (float("nan"), out[1])
    solver = Solver(Exploding(20, 4), small_data(), num_epochs=5, batch_size=10, verbose=False)
    with pytest.warns(RuntimeWarning, match="Lower the learning rate"):
        solver.train()
    assert len(solver.loss_history) == 1


def test_check_accuracy_subsamples_and_batches():
    data = small_data()
    model = SoftmaxModel(20, 4)
    solver = Solver(model, data, verbose=False)
    full = solver.check_accuracy(data["X_val"], data["y_val"], batch_size=7)
    expected = np.mean(np.argmax(model.loss(data["X_val"]), axis=1) == data["y_val"])
    assert full == pytest.approx(expected)
    np.random.seed(0)
    part = solver.check_accuracy(data["X_val"], data["y_val"], num_samples=10)
    assert part * 10 == pytest.approx(round(part * 10))  # a fraction of 10 samples


def test_verbose_shows_a_progress_bar_with_loss_and_accuracy(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)   # a terminal: the text bar is on
    solver = Solver(SoftmaxModel(20, 4), small_data(), num_epochs=2, batch_size=25, print_every=1)
    solver.train()
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "loss=" in text and "val_acc=" in text and "train_acc=" in text
    assert "(Epoch 2 / 2)" in text and "(Iteration 4 / 4)" in text


def test_not_verbose_prints_nothing(capsys):
    Solver(SoftmaxModel(20, 4), small_data(), num_epochs=2, batch_size=25, verbose=False).train()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


# ---------------------------------------------------------------- with the ConvNet

def test_convnet_overfits_50_examples():
    from cs_layers.cnn import ThreeLayerConvNet
    from cs_layers.data import load_digits
    np.random.seed(231)
    d = load_digits()
    small = {"X_train": d["X_train"][:50], "y_train": d["y_train"][:50],
             "X_val": d["X_val"][:50], "y_val": d["y_val"][:50]}
    model = ThreeLayerConvNet(num_filters=8, filter_size=3, hidden_dim=50, weight_scale=1e-2)
    solver = Solver(model, small, update_rule="adam", optim_config={"learning_rate": 2e-3},
                    num_epochs=10, batch_size=25, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # a NaN loss fails the test
        solver.train()
    assert solver.train_acc_history[-1] == 1.0, solver.train_acc_history


@pytest.mark.slow
def test_convnet_reaches_90_percent_on_digits():
    """The demo's settings (python -m cs_layers.train defaults), one epoch of digits
    (about 0.94 validation accuracy; the demo runs two)."""
    from cs_layers.cnn import ThreeLayerConvNet
    from cs_layers.data import load_digits
    from cs_layers.train import parse_args
    args = parse_args([])
    np.random.seed(args.seed)
    data = load_digits()
    model = ThreeLayerConvNet(weight_scale=args.weight_scale, reg=args.reg)
    solver = Solver(model, data, update_rule=args.update_rule,
                    optim_config={"learning_rate": args.lr}, num_epochs=1,
                    batch_size=args.batch_size, num_train_samples=250, verbose=False)
    solver.train()
    assert solver.best_val_acc >= 0.90, solver.val_acc_history
    test_acc = solver.check_accuracy(data["X_test"], data["y_test"])
    assert test_acc >= 0.85, f"val {solver.best_val_acc}, test {test_acc}"
