"""Checks that hold for the naive and the fast layers alike: one body, both implementations.

Each test runs once per implementation, under that implementation's task marker:
"naive" is conv_*_naive (task2_3) or max_pool_*_naive (task2_4), "fast" is conv_*_fast
(task2_5) or max_pool_*_fast (task2_6). `pytest -m task2_5` runs only the fast ones.
"""
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

from cs_layers.fast_layers import conv_backward_fast, conv_forward_fast, max_pool_backward_fast, max_pool_forward_fast
from cs_layers.gradient_check import check_close, eval_numerical_gradient_array
from cs_layers.layers import conv_backward_naive, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive

from strategies import conv_cases, pool_cases


@dataclass(frozen=True)
class Layer:
    forward: Callable
    backward: Callable
    label: str  # how failure messages name it
    seed: int  # of the numerical gradient checks' random inputs
    fwd_hint: str
    bwd_hint: str


CONV = [
    pytest.param(Layer(conv_forward_naive, conv_backward_naive, "conv", 231,
                       "Usual mistakes: not padding x with `pad` zeros on each side, stepping the window by "
                       "1 instead of `stride`, or forgetting to add b[f].",
                       "Usual mistakes: forgetting to accumulate (+=) into dx/dw where windows overlap, or "
                       "returning the gradient of the padded x instead of cropping the padding off."),
                 marks=pytest.mark.task2_3, id="naive"),
    pytest.param(Layer(conv_forward_fast, conv_backward_fast, "fast conv", 25,
                       "Usual mistakes: windows taken with the wrong stride, cols rows ordered differently "
                       "from w.reshape(F, -1) (keep C, HH, WW in that order), or forgetting b.",
                       "Usual mistakes: col2im that assigns (=) instead of adding (+=) where windows "
                       "overlap, a transposed dw, or returning dx with the padding still on."),
                 marks=pytest.mark.task2_5, id="fast"),
]

POOL = [
    pytest.param(Layer(max_pool_forward_naive, max_pool_backward_naive, "pool", 4,
                       "Usual mistakes: stepping the window by 1 instead of `stride`, or mixing up "
                       "pool_height and pool_width for non-square windows.",
                       "Usual mistakes: sending the gradient to every element of the window instead of "
                       "only the max, or overwriting (=) instead of adding (+=) where windows overlap."),
                 marks=pytest.mark.task2_4, id="naive"),
    pytest.param(Layer(max_pool_forward_fast, max_pool_backward_fast, "fast pool", 6,
                       "Usual mistakes: slicing x[:, :, i::stride] without stopping after H_out windows, "
                       "or mixing up pool_height and pool_width.",
                       "Usual mistakes: sending the gradient to every tied max instead of only the first "
                       "(row-major window order), or overwriting instead of adding where windows overlap."),
                 marks=pytest.mark.task2_6, id="fast"),
]


def _torch_conv(conv_param):
    return lambda x, w, b: tF.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"])


def _torch_pool(p):
    return lambda x: tF.max_pool2d(x, (p["pool_height"], p["pool_width"]), p["stride"])


# ---------------------------------------------------------------- conv backward

@pytest.mark.parametrize("layer", CONV)
def test_conv_backward_hand_computed(layer):
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    _, cache = layer.forward(x, w, np.array([1.0]), {"stride": 1, "pad": 0})
    dx, dw, db = layer.backward(np.ones((1, 1, 2, 2)), cache)
    check_close(db, np.array([4.0]), 1e-12, f"{layer.label} db", "db[f] is the sum of dout over n, i, j")
    check_close(dw, np.array([[[[0 + 1 + 3 + 4, 1 + 2 + 4 + 5], [3 + 4 + 6 + 7, 4 + 5 + 7 + 8]]]]),
                1e-12, f"{layer.label} dw", "dw[f] sums each window of x times dout[n, f, i, j]")
    check_close(dx, np.array([[[[1, 1 + 2, 2], [1 + 3, 1 + 2 + 3 + 4, 2 + 4], [3, 3 + 4, 4]]]]),
                1e-12, f"{layer.label} dx", layer.bwd_hint)


@pytest.mark.parametrize("layer", CONV)
@pytest.mark.parametrize("conv_param, x_shape, w_shape", [
    ({"stride": 1, "pad": 1}, (2, 3, 5, 5), (2, 3, 3, 3)),
    ({"stride": 2, "pad": 1}, (2, 2, 5, 7), (3, 2, 3, 1)),
    ({"stride": 3, "pad": 2}, (1, 2, 6, 5), (2, 2, 4, 3)),
])
def test_conv_numerical_gradient(layer, conv_param, x_shape, w_shape):
    rng = np.random.default_rng(layer.seed)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    out, cache = layer.forward(x, w, b, conv_param)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = layer.backward(dout, cache)
    for name, arr, grad in (("dx", x, dx), ("dw", w, dw), ("db", b, db)):
        num = eval_numerical_gradient_array(lambda _: layer.forward(x, w, b, conv_param)[0], arr, dout)
        check_close(grad, num, 1e-7, f"{layer.label} {name} vs central differences ({conv_param})",
                    layer.bwd_hint)


@pytest.mark.parametrize("layer", CONV)
@given(case=conv_cases())
def test_conv_matches_torch(layer, case, torch_vjp, term_scale):
    x, w, b, conv_param = case
    out, cache = layer.forward(x, w, b, conv_param)
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    copies = [x.copy(), w.copy(), b.copy(), dout.copy()]
    grads = layer.backward(dout, cache)
    expected_out, expected = torch_vjp(_torch_conv(conv_param), [x, w, b], dout)
    scale, scales = term_scale(_torch_conv(conv_param), [x, w, b], dout)
    check_close(out, expected_out, 1e-9, f"{layer.label} out vs torch conv2d ({conv_param})", layer.fwd_hint,
                scale=scale)
    for name, g, e, sc in zip(("dx", "dw", "db"), grads, expected, scales):
        check_close(g, e, 1e-9, f"{layer.label} {name} vs torch autograd ({conv_param})", layer.bwd_hint, scale=sc)
    for a, c in zip((x, w, b, dout), copies):
        assert np.array_equal(a, c), f"{layer.label} backward modified an input or the cache in place"


# ---------------------------------------------------------------- max pool

@pytest.mark.parametrize("layer", POOL)
def test_pool_hand_computed(layer):
    x = np.array([[[[1.0, 3, 2, 0],
                    [4, 2, 1, 5],
                    [0, 1, 7, 3],
                    [2, 6, 1, 1]]]])
    out, cache = layer.forward(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    check_close(out, np.array([[[[4.0, 5], [6, 7]]]]), 0, f"{layer.label} out (4x4, 2x2 stride 2)",
                layer.fwd_hint)
    dx = layer.backward(np.array([[[[1.0, 2], [3, 4]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0], expected[0, 0, 1, 3], expected[0, 0, 3, 1], expected[0, 0, 2, 2] = 1, 2, 3, 4
    check_close(dx, expected, 0, f"{layer.label} dx (4x4, 2x2 stride 2)", layer.bwd_hint)


@pytest.mark.parametrize("layer", POOL)
@pytest.mark.parametrize("pool_param", [
    {"pool_height": 2, "pool_width": 2, "stride": 2},
    {"pool_height": 3, "pool_width": 2, "stride": 1},
    {"pool_height": 2, "pool_width": 3, "stride": 3},
])
def test_pool_numerical_gradient(layer, pool_param):
    rng = np.random.default_rng(layer.seed)
    x = rng.permutation(2 * 3 * 7 * 8).reshape(2, 3, 7, 8) / 50.0  # distinct values: no ties
    out, cache = layer.forward(x, pool_param)
    dout = rng.standard_normal(out.shape)
    num = eval_numerical_gradient_array(lambda v: layer.forward(v, pool_param)[0], x, dout)
    check_close(layer.backward(dout, cache), num, 1e-8,
                f"{layer.label} dx vs central differences ({pool_param})", layer.bwd_hint)


@pytest.mark.parametrize("layer", POOL)
@given(case=pool_cases(), ties=st.booleans())
def test_pool_matches_torch(layer, case, ties, torch_vjp):
    x, pool_param = case
    if ties:  # few distinct values: every window has ties; the gradient goes to the first max
        x = np.floor(x * 2.0)
    x_copy, param_copy = x.copy(), dict(pool_param)
    out, cache = layer.forward(x, pool_param)
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    dx = layer.backward(dout, cache)
    expected, (expected_dx,) = torch_vjp(_torch_pool(pool_param), [x], dout)
    _, (dx_scale,) = torch_vjp(_torch_pool(pool_param), [x], np.abs(dout))  # sum of |dout| routed to each x
    check_close(out, expected, 1e-9, f"{layer.label} out vs torch max_pool2d ({pool_param})", layer.fwd_hint)
    check_close(dx, expected_dx, 1e-9, f"{layer.label} dx vs torch autograd ({pool_param}, ties={ties})",
                layer.bwd_hint, scale=dx_scale)
    assert np.array_equal(x, x_copy) and pool_param == param_copy, "an input was modified in place"
