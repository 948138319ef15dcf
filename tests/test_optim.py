"""cs_layers.optim: each rule matches torch.optim step for step (float64)."""
import numpy as np
import pytest
import torch

from cs_layers import optim
from cs_layers.gradient_check import check_close

STEPS = 5


def torch_trajectory(opt_cls, w0, grads, **kwargs):
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = opt_cls([p], **kwargs)
    out = []
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


def our_trajectory(rule, w0, grads, config):
    w, out = w0.copy(), []
    for g in grads:
        w, config = rule(w, g, config)
        out.append(w.copy())
    return out, config


CASES = {
    "sgd": (optim.sgd, torch.optim.SGD, {"learning_rate": 0.1}, {"lr": 0.1}),
    "sgd_momentum": (optim.sgd_momentum, torch.optim.SGD,
                     {"learning_rate": 0.1, "momentum": 0.8}, {"lr": 0.1, "momentum": 0.8}),
    "rmsprop": (optim.rmsprop, torch.optim.RMSprop,
                {"learning_rate": 0.01, "decay_rate": 0.9, "epsilon": 1e-8},
                {"lr": 0.01, "alpha": 0.9, "eps": 1e-8}),
    "adam": (optim.adam, torch.optim.Adam,
             {"learning_rate": 0.01, "beta1": 0.8, "beta2": 0.95, "epsilon": 1e-8},
             {"lr": 0.01, "betas": (0.8, 0.95), "eps": 1e-8}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    rule, torch_cls, config, torch_kwargs = CASES[name]
    rng = np.random.default_rng(0)
    w0 = rng.standard_normal((4, 5))
    grads = [rng.standard_normal((4, 5)) for _ in range(STEPS)]
    ours, _ = our_trajectory(rule, w0, grads, dict(config))
    theirs = torch_trajectory(torch_cls, w0, grads, **torch_kwargs)
    for step, (a, b) in enumerate(zip(ours, theirs)):
        check_close(a, b, 1e-9, name=f"{name} step {step + 1}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_defaults_dtype_and_no_in_place_update(name):
    rule = CASES[name][0]
    w = np.ones((3, 2), dtype=np.float32)
    dw = np.full((3, 2), 0.5, dtype=np.float32)
    next_w, config = rule(w, dw)
    assert "learning_rate" in config
    assert next_w.dtype == np.float32 and next_w.shape == w.shape
    np.testing.assert_array_equal(w, 1.0)  # input untouched
    assert np.all(next_w < 1.0)  # a step downhill


def test_adam_counts_steps_and_keeps_state():
    w, dw = np.zeros(3), np.ones(3)
    _, config = optim.adam(w, dw, None)
    _, config = optim.adam(w, dw, config)
    assert config["t"] == 2 and config["m"].shape == (3,) and config["v"].shape == (3,)


def test_shape_mismatch_is_reported():
    with pytest.raises(ValueError, match=r"w has shape \(3,\) but dw has shape \(4,\)"):
        optim.sgd(np.zeros(3), np.zeros(4))
