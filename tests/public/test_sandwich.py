"""Public checks for the sandwich layers in layer_utils (task2_7)."""
import numpy as np
import pytest
import torch.nn.functional as tF

from cs_layers import layer_utils as lu
from cs_layers.gradient_check import check_close, eval_numerical_gradient_array
from cs_layers.layers import (
    affine_forward,
    conv_forward_naive,
    max_pool_forward_naive,
    relu_forward,
    spatial_batchnorm_forward,
)

pytestmark = pytest.mark.task2_7

HINT = ("Usual mistakes: calling the layers in the wrong order, or passing the wrong cache to a "
        "backward call (backward unwinds the caches in reverse order).")
CONV = {"stride": 1, "pad": 1}


def _conv_scale(term_scale, x, w, b):
    """Sum of |terms| of each conv output: the sandwich may use the fast conv, summing in another order."""
    return term_scale(lambda x, w, b: tF.conv2d(x, w, b, stride=CONV["stride"], padding=CONV["pad"]),
                      [x, w, b])[0]
POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _arrays(seed=7):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 6, 4))  # rectangular input
    w, b = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    return rng, x, w, b, gamma, beta


def _check_grads(forward, backward, inputs, names, rng, zero=()):
    """Compare backward(dout, cache) with central differences for every input.

    Gradients named in `zero` are exactly zero in theory (central differences
    there are pure rounding noise), so they are checked against zero instead.
    """
    out, cache = forward(*inputs)
    dout = rng.standard_normal(out.shape)
    grads = backward(dout, cache)
    assert len(grads) == len(names), f"{backward.__name__} must return {len(names)} gradients {names}"
    for k, (name, grad) in enumerate(zip(names, grads)):
        if name in zero:
            assert np.all(np.abs(grad) < 1e-8), f"{backward.__name__}: {name} must be 0, got {grad}. {HINT}"
            continue
        num = eval_numerical_gradient_array(lambda _: forward(*inputs)[0], inputs[k], dout)
        check_close(grad, num, 1e-7, f"{backward.__name__}: {name} vs central differences", HINT)


def test_affine_relu():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((3, 2, 4)), rng.standard_normal((8, 5)), rng.standard_normal(5)
    out, _ = lu.affine_relu_forward(x, w, b)
    check_close(out, relu_forward(affine_forward(x, w, b)[0])[0], 1e-12, "affine_relu out", HINT)
    _check_grads(lu.affine_relu_forward, lu.affine_relu_backward, [x, w, b], ("dx", "dw", "db"), rng)


def test_conv_relu(term_scale):
    rng, x, w, b, _, _ = _arrays()
    out, _ = lu.conv_relu_forward(x, w, b, CONV)
    expected = relu_forward(conv_forward_naive(x, w, b, CONV)[0])[0]
    check_close(out, expected, 1e-9, "conv_relu out vs naive conv then relu", HINT,
                scale=_conv_scale(term_scale, x, w, b))   # relu moves no value further apart
    _check_grads(lambda x, w, b: lu.conv_relu_forward(x, w, b, CONV), lu.conv_relu_backward,
                 [x, w, b], ("dx", "dw", "db"), rng)


def test_conv_relu_pool(term_scale):
    rng, x, w, b, _, _ = _arrays()
    out, cache = lu.conv_relu_pool_forward(x, w, b, CONV, POOL)
    expected = max_pool_forward_naive(relu_forward(conv_forward_naive(x, w, b, CONV)[0])[0], POOL)[0]
    scale = max_pool_forward_naive(_conv_scale(term_scale, x, w, b), POOL)[0]  # the window's largest scale
    check_close(out, expected, 1e-9, "conv_relu_pool out vs naive conv, relu, pool", HINT, scale=scale)
    assert len(cache) == 3, "conv_relu_pool cache must be (conv_cache, relu_cache, pool_cache)"
    _check_grads(lambda x, w, b: lu.conv_relu_pool_forward(x, w, b, CONV, POOL), lu.conv_relu_pool_backward,
                 [x, w, b], ("dx", "dw", "db"), rng)


def test_conv_bn_relu():
    rng, x, w, b, gamma, beta = _arrays()
    bn_param = {"mode": "train"}
    out, _ = lu.conv_bn_relu_forward(x, w, b, gamma, beta, CONV, bn_param)
    a = conv_forward_naive(x, w, b, CONV)[0]
    expected = relu_forward(spatial_batchnorm_forward(a, gamma, beta, {"mode": "train"})[0])[0]
    check_close(out, expected, 1e-9, "conv_bn_relu out vs naive conv, spatial batchnorm, relu", HINT,
                scale=np.abs(expected).max())   # normalised values: rounding relative to the largest
    assert "running_mean" in bn_param, "conv_bn_relu_forward must pass bn_param on to spatial batchnorm"
    _check_grads(lambda x, w, b, g, be: lu.conv_bn_relu_forward(x, w, b, g, be, CONV, {"mode": "train"}),
                 lu.conv_bn_relu_backward, [x, w, b, gamma, beta], ("dx", "dw", "db", "dgamma", "dbeta"), rng,
                 zero=("db",))  # batchnorm removes any constant added before it


def test_float32_stays_float32():
    _, x, w, b, gamma, beta = (a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in _arrays())
    out, cache = lu.conv_relu_pool_forward(x, w, b, CONV, POOL)
    grads = lu.conv_relu_pool_backward(np.ones_like(out), cache)
    out2, cache2 = lu.conv_bn_relu_forward(x, w, b, gamma, beta, CONV, {"mode": "train"})
    grads2 = lu.conv_bn_relu_backward(np.ones_like(out2), cache2)
    for a in (out, out2, *grads, *grads2):
        assert a.dtype == np.float32, f"a float32 sandwich produced {a.dtype}; keep the input dtype"
