"""Public checks for ThreeLayerConvNet (task2_8) and its given checkpoint loader (marker `given`)."""
import numpy as np
import pytest

from cs_layers.cnn import ThreeLayerConvNet, load_model, save_model
from cs_layers.gradient_check import check_close, eval_numerical_gradient

SMALL = dict(input_dim=(3, 8, 8), num_filters=3, filter_size=3, hidden_dim=7, num_classes=5)


def _small_model(reg=0.0, weight_scale=0.1, seed=231):
    np.random.seed(seed)
    return ThreeLayerConvNet(**SMALL, weight_scale=weight_scale, reg=reg, dtype=np.float64)


def _batch(n=2, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 3, 8, 8)), rng.integers(0, 5, size=n)


@pytest.mark.task2_8
def test_init_shapes_dtypes_and_scale():
    np.random.seed(0)
    model = ThreeLayerConvNet(input_dim=(3, 16, 12), num_filters=6, filter_size=5, hidden_dim=20,
                              num_classes=4, weight_scale=0.5)
    expected = {"W1": (6, 3, 5, 5), "b1": (6,), "W2": (6 * 8 * 6, 20), "b2": (20,), "W3": (20, 4), "b3": (4,)}
    shapes = {k: v.shape for k, v in model.params.items()}
    assert shapes == expected, (f"parameter shapes {shapes}, expected {expected}: W2 has one row per "
                                f"value after the 2x2 pool, F * H/2 * W/2")
    for k, v in model.params.items():
        assert v.dtype == np.float32, f"{k} is {v.dtype}; the default dtype is float32"
        if k.startswith("b"):
            assert not v.any(), f"{k} must start at zero"
    assert 0.4 < model.params["W2"].std() < 0.6, "weights must be drawn with std weight_scale"


@pytest.mark.task2_8
def test_initial_loss_is_log_num_classes():
    np.random.seed(1)
    model = ThreeLayerConvNet(input_dim=(3, 16, 16), num_classes=10, num_filters=8, hidden_dim=20)
    X, y = np.random.randn(20, 3, 16, 16), np.random.randint(10, size=20)
    loss, grads = model.loss(X, y)
    assert abs(loss - np.log(10)) < 0.02, (
        f"with tiny weights every class is equally likely, so the loss should be about log(10) = 2.303, "
        f"got {loss}")
    assert set(grads) == set(model.params), f"grads keys {sorted(grads)} != params keys {sorted(model.params)}"
    scores = model.loss(X)
    assert scores.shape == (20, 10) and scores.dtype == np.float32, (
        f"loss(X) must return float32 scores of shape (N, num_classes), got {scores.shape} {scores.dtype}")


@pytest.mark.task2_8
def test_regularisation_adds_half_reg_sum_of_squares():
    X, y = _batch()
    loss0, _ = _small_model(reg=0.0).loss(X, y)
    model = _small_model(reg=0.7)
    loss1, _ = model.loss(X, y)
    assert loss1 > loss0, f"the loss with reg > 0 ({loss1}) must exceed the loss without ({loss0})"
    penalty = 0.5 * 0.7 * sum(np.sum(model.params[k] ** 2) for k in ("W1", "W2", "W3"))
    check_close(np.array(loss1 - loss0), np.array(penalty), 1e-9, "loss(reg) - loss(0)",
                "add 0.5 * reg * sum(W ** 2) for W1, W2 and W3 only (not the biases)")


@pytest.mark.parametrize("reg", [0.0, 0.1])
@pytest.mark.task2_8
def test_numerical_gradient(reg):
    model = _small_model(reg=reg)
    X, y = _batch()
    _, grads = model.loss(X, y)
    for name in sorted(model.params):
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name])
        check_close(grads[name], num, 1e-6, f"grads[{name!r}] vs central differences (reg={reg})",
                    "Usual mistakes: passing the wrong cache to a backward call, or forgetting reg * W.")


@pytest.mark.task2_8
def test_save_load_round_trip(tmp_path):
    model = _small_model()
    X, _ = _batch(4)
    path = tmp_path / "convnet_model.npz"
    save_model(path, model, dataset="digits")
    loaded, meta = load_model(path, dtype=np.float64)
    assert meta == {"dataset": "digits"}, f"metadata {meta} was not kept"
    for k, v in model.params.items():
        assert np.array_equal(loaded.params[k], v), f"{k} changed in the round trip"
    check_close(loaded.loss(X), model.loss(X), 1e-12, "scores of the loaded model", "")


def _saved(tmp_path, **overrides):
    rng = np.random.default_rng(3)
    params = {"W1": rng.standard_normal((3, 3, 3, 3)), "b1": np.zeros(3),
              "W2": rng.standard_normal((3 * 4 * 4, 7)), "b2": np.zeros(7),
              "W3": rng.standard_normal((7, 5)), "b3": np.zeros(5)}
    params.update(overrides)
    path = tmp_path / "model.npz"
    np.savez(path, **{k: v for k, v in params.items() if v is not None})
    return path


@pytest.mark.given
def test_load_infers_sizes(tmp_path):
    model, meta = load_model(_saved(tmp_path))
    assert model.input_dim == (3, 8, 8) and meta == {}, f"inferred input_dim {model.input_dim}, meta {meta}"
    assert model.params["W1"].dtype == np.float32, "load_model returns float32 parameters by default"


@pytest.mark.parametrize("overrides, match", [
    ({"W2": np.zeros((50, 7))}, "W2"),
    ({"b3": np.zeros(4)}, "shapes do not fit"),
    ({"W3": np.full((7, 5), np.nan)}, "NaN"),
    ({"b2": None}, "lacks"),
    ({"W1": np.zeros((3, 3, 3, 2))}, "W1"),
])
@pytest.mark.given
def test_load_refuses_bad_files(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        load_model(_saved(tmp_path, **overrides))


@pytest.mark.given
def test_load_refuses_garbage_and_pickles(tmp_path):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="not a valid ThreeLayerConvNet checkpoint"):
        load_model(garbage)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, W1=np.zeros((3, 3, 3, 3)), b1=np.array([{"evil": 1}], dtype=object))
    with pytest.raises(ValueError, match="not a valid ThreeLayerConvNet checkpoint"):
        load_model(pickled)
