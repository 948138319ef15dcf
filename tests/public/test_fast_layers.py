"""Public checks for the fast layers: conv (task2_5) and max pool (task2_6).

The fast layers must agree with the naive ones and with torch.nn.functional,
keep float32 as float32, and never modify their inputs. Each backward pass
takes only the cache of its own forward pass (the fast caches hold more than
the naive ones) and refuses any other with a clear ValueError. Speed is
measured by `python -m bench.layers`, never here: no test requires a
particular optimisation. The checks the naive layers share (hand-computed backward
cases, numerical gradients) are in test_naive_and_fast.py.
"""
import copy
import pickle

import numpy as np
import pytest
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

from cs_layers.caches import LayerCache, open_cache
from cs_layers.fast_layers import (
    conv_backward_fast,
    conv_forward_fast,
    im2col_windows,
    max_pool_backward_fast,
    max_pool_forward_fast,
)
from cs_layers.gradient_check import check_close
from cs_layers.layers import conv_backward_naive, conv_forward_naive, max_pool_backward_naive, max_pool_forward_naive

from strategies import conv_cases, pool_cases

CONV_FWD_HINT = ("Usual mistakes: windows taken with the wrong stride, cols rows ordered differently "
                 "from w.reshape(F, -1) (keep C, HH, WW in that order), or forgetting b.")
CONV_BWD_HINT = ("Usual mistakes: col2im that assigns (=) instead of adding (+=) where windows overlap, "
                 "a transposed dw, or returning dx with the padding still on.")
IM2COL_HINT = ("Usual mistakes: taking the stride before the window (slice the sliding windows with "
               "::stride), padding x in place, or transposing to an order other than (C, HH, WW, N, H_out, W_out).")
POOL_FWD_HINT = ("Usual mistakes: slicing x[:, :, i::stride] without stopping after H_out windows, or "
                 "mixing up pool_height and pool_width.")
POOL_BWD_HINT = ("Usual mistakes: sending the gradient to every tied max instead of only the first "
                 "(row-major window order), or overwriting instead of adding where windows overlap.")


def _torch_conv(conv_param):
    return lambda x, w, b: tF.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"])


def _torch_pool(p):
    return lambda x: tF.max_pool2d(x, (p["pool_height"], p["pool_width"]), p["stride"])


def _positive(case):
    """The same conv case with every value in [0.1, inf): no cancellation, so float32 stays accurate."""
    x, w, b, conv_param = case
    return np.abs(x) + 0.1, np.abs(w) + 0.1, np.abs(b) + 0.1, conv_param


# ---------------------------------------------------------------- task2_5: conv

@pytest.mark.task2_5
def test_conv_hand_computed():
    x = np.arange(9, dtype=np.float64).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out, _ = conv_forward_fast(x, w, np.array([1.0]), {"stride": 1, "pad": 0})
    expected = np.array([[[[0*1 + 1*2 + 3*3 + 4*4 + 1, 1*1 + 2*2 + 4*3 + 5*4 + 1],
                           [3*1 + 4*2 + 6*3 + 7*4 + 1, 4*1 + 5*2 + 7*3 + 8*4 + 1]]]])
    check_close(out, expected, 1e-12, "fast conv out (3x3 input, 2x2 kernel)", CONV_FWD_HINT)
    # its backward pass: tests/public/test_naive_and_fast.py (the same case for naive and fast)


@pytest.mark.task2_5
def test_conv_hand_computed_stride_pad_nonsquare():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    w = np.array([[[[1.0, 10.0, 100.0]]]])  # one row, three columns
    out, cache = conv_forward_fast(x, w, np.array([0.0]), {"stride": 2, "pad": 1})
    # x padded to 5x5; 1x3 windows start at rows 0, 2, 4 and columns 0, 2: only
    # padded row 2 (x's middle row 4 5 6) holds data
    expected = np.array([[[[0.0, 0.0], [0 + 10*4 + 100*5, 5 + 10*6 + 0], [0.0, 0.0]]]])
    check_close(out, expected, 1e-12, "fast conv out (1x3 kernel, stride 2, pad 1)", CONV_FWD_HINT)
    dx, dw, db = conv_backward_fast(np.ones((1, 1, 3, 2)), cache)
    check_close(dx, np.array([[[[0.0, 0.0, 0.0], [10.0, 100.0 + 1.0, 10.0], [0.0, 0.0, 0.0]]]]), 1e-12,
                "fast conv dx (1x3 kernel, stride 2, pad 1)", CONV_BWD_HINT)
    check_close(dw, np.array([[[[0 + 5, 4 + 6, 5 + 0]]]]), 1e-12, "fast conv dw (1x3 kernel, stride 2, pad 1)",
                CONV_BWD_HINT)


@pytest.mark.task2_5
def test_im2col_windows_hand_computed():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    windows = im2col_windows(x, 3, 1, 2, 1)  # 3x1 kernel, stride 2, pad 1: x_pad is 5x5
    assert windows.shape == (1, 3, 1, 1, 2, 3), (
        f"windows has shape {windows.shape}, expected (C, HH, WW, N, H_out, W_out) = (1, 3, 1, 1, 2, 3)")
    # window (y, x) starts at padded row 2y, column 2x; its element i lies in padded row 2y + i
    top = np.array([[0.0, 0.0, 0.0], [0.0, 5.0, 0.0]])  # padded rows 0 and 2, columns 0, 2, 4
    middle = np.array([[0.0, 2.0, 0.0], [0.0, 8.0, 0.0]])  # padded rows 1 and 3
    bottom = np.array([[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]])  # padded rows 2 and 4
    for i, (rows, what) in enumerate(((top, "top"), (middle, "middle"), (bottom, "bottom"))):
        check_close(windows[0, i, 0, 0], rows, 0, f"windows[0, {i}, 0, 0] (the {what} element of every "
                    "window)", IM2COL_HINT)


@pytest.mark.task2_5
@given(case=conv_cases())
def test_im2col_windows_is_a_view_of_every_receptive_field(case):
    x, w, _, conv_param = case
    stride, pad = conv_param["stride"], conv_param["pad"]
    F, C, HH, WW = w.shape
    N, _, H, W = x.shape
    H_out, W_out = 1 + (H + 2 * pad - HH) // stride, 1 + (W + 2 * pad - WW) // stride
    view = im2col_windows(x, HH, WW, stride, pad)
    assert view.shape == (C, HH, WW, N, H_out, W_out), (
        f"im2col_windows returned shape {view.shape}, expected (C, HH, WW, N, H_out, W_out) = "
        f"{(C, HH, WW, N, H_out, W_out)}")
    assert not view.flags.owndata, "im2col_windows must return a view (stride tricks), not a copy"
    x_pad = np.zeros((N, C, H + 2 * pad, W + 2 * pad))
    x_pad[:, :, pad:pad + H, pad:pad + W] = x
    expected = np.empty((C, HH, WW, N, H_out, W_out))
    for y in range(H_out):
        for xx in range(W_out):
            patch = x_pad[:, :, y * stride:y * stride + HH, xx * stride:xx * stride + WW]  # (N, C, HH, WW)
            expected[:, :, :, :, y, xx] = patch.transpose(1, 2, 3, 0)
    check_close(view, expected, 0, f"im2col_windows ({conv_param}, kernel {HH}x{WW})", IM2COL_HINT)


@pytest.mark.task2_5
@given(case=conv_cases(), fortran=st.booleans())
def test_conv_fast_equals_naive(case, fortran, term_scale):
    x, w, b, conv_param = case
    if fortran:  # the fast layer must not assume C-contiguous inputs
        x, w = np.asfortranarray(x), np.asfortranarray(w)
    copies = [x.copy(), w.copy(), b.copy(), dict(conv_param)]
    out_fast, cache_fast = conv_forward_fast(x, w, b, conv_param)
    out_naive, cache_naive = conv_forward_naive(x, w, b, conv_param)
    dout = np.random.default_rng(out_fast.size).standard_normal(out_fast.shape)
    scale, scales = term_scale(_torch_conv(conv_param), [x, w, b], dout)  # rounding is relative to these
    check_close(out_fast, out_naive, 1e-9, f"fast vs naive conv out ({conv_param})", CONV_FWD_HINT, scale=scale)
    expected = conv_backward_naive(dout, cache_naive)
    grads = conv_backward_fast(dout, cache_fast)
    assert isinstance(grads, tuple) and len(grads) == 3, "conv_backward_fast must return (dx, dw, db)"
    for name, g, e, sc in zip(("dx", "dw", "db"), grads, expected, scales):
        check_close(g, e, 1e-9, f"fast vs naive {name} ({conv_param})", CONV_BWD_HINT, scale=sc)
    for a, c in zip((x, w, b), copies):
        assert np.array_equal(a, c), "an input array was modified in place; pad into a new array"
    assert conv_param == copies[3], "conv_param was modified"


@pytest.mark.task2_5
@given(case=conv_cases())
def test_conv_need_dx_false_keeps_dw_and_db(case):
    # need_dx=False lets a layer skip dx (the model's first layer does not need it); dw and db
    # must not change. Skipping is allowed, not required: dx may be None or still correct.
    x, w, b, conv_param = case
    out, cache = conv_forward_fast(x, w, b, conv_param)
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    dx, dw, db = conv_backward_fast(dout, cache)
    dx2, dw2, db2 = conv_backward_fast(dout, cache, need_dx=False)
    check_close(dw2, dw, 1e-12, "dw with need_dx=False", "need_dx only decides whether dx is computed")
    check_close(db2, db, 1e-12, "db with need_dx=False", "need_dx only decides whether dx is computed")
    if dx2 is not None:
        check_close(dx2, dx, 1e-12, "dx with need_dx=False", "return None, or the same dx")


@pytest.mark.task2_5
@given(case=conv_cases())
def test_conv_float32_stays_float32(case):
    x, w, b, conv_param = _positive(case)
    x32, w32, b32 = (a.astype(np.float32) for a in (x, w, b))
    out, cache = conv_forward_fast(x32, w32, b32, conv_param)
    assert out.dtype == np.float32, f"float32 inputs gave a {out.dtype} output; keep float32"
    out64, cache64 = conv_forward_fast(x32.astype(np.float64), w32.astype(np.float64),
                                       b32.astype(np.float64), conv_param)
    check_close(out, out64, 1e-5, "float32 conv out vs float64", CONV_FWD_HINT)
    dout = np.ones_like(out)
    grads = conv_backward_fast(dout, cache)
    for name, g, e, a in zip(("dx", "dw", "db"), grads, conv_backward_fast(dout.astype(np.float64), cache64),
                             (x32, w32, b32)):
        assert g.dtype == np.float32, f"{name} is {g.dtype} for float32 inputs; keep float32"
        check_close(g, e, 1e-5, f"float32 conv {name} vs float64", CONV_BWD_HINT)


@pytest.mark.given
@pytest.mark.parametrize("x_shape, w_shape, conv_param, words", [
    ((1, 3, 5, 5), (2, 4, 3, 3), {"stride": 1, "pad": 1}, "C=3"),
    ((1, 1, 6, 6), (1, 1, 3, 3), {"stride": 2, "pad": 0}, "stride=2"),
    ((1, 1, 5, 5), (1, 1, 3, 3), {"stride": 1, "pad": -1}, "pad"),
    ((1, 1, 5, 5), (1, 1, 3, 3), {"stride": 0, "pad": 1}, "stride"),
])
def test_conv_rejects_bad_arguments(x_shape, w_shape, conv_param, words):
    x, w, b = np.zeros(x_shape), np.zeros(w_shape), np.zeros(w_shape[0])
    with pytest.raises(ValueError, match=words):
        conv_forward_fast(x, w, b, conv_param)
    with pytest.raises(ValueError, match=words):
        conv_backward_fast(np.zeros((1, 1, 3, 3)), LayerCache("conv_forward_fast", (x, w, b, conv_param, None)))


@pytest.mark.task2_5
def test_conv_backward_rejects_wrong_dout_shape():
    x, w, b = np.zeros((2, 1, 4, 4)), np.zeros((3, 1, 3, 3)), np.zeros(3)
    _, cache = conv_forward_fast(x, w, b, {"stride": 1, "pad": 1})
    with pytest.raises(ValueError, match="dout"):
        conv_backward_fast(np.zeros((2, 3, 3, 3)), cache)


# ---------------------------------------------------------------- task2_6: max pool

@pytest.mark.task2_6
def test_pool_hand_computed_overlap_leftover_and_ties():
    # 1x2 windows with stride 1 overlap at the 5; a 2x2 window of equal values
    # sends its gradient to the top-left one only; the last row is left over.
    x = np.array([[[[1.0, 5.0, 2.0],
                    [7.0, 7.0, 0.0],
                    [7.0, 7.0, 9.0]]]])
    out, cache = max_pool_forward_fast(x, {"pool_height": 1, "pool_width": 2, "stride": 1})
    check_close(out, np.array([[[[5.0, 5.0], [7.0, 7.0], [7.0, 9.0]]]]), 0,
                "fast pool out (1x2 windows, stride 1)", POOL_FWD_HINT)
    dx = max_pool_backward_fast(np.array([[[[1.0, 10.0], [1.0, 2.0], [3.0, 4.0]]]]), cache)
    check_close(dx, np.array([[[[0.0, 11.0, 0.0], [1.0, 2.0, 0.0], [3.0, 0.0, 4.0]]]]), 0,
                "fast pool dx (overlapping windows, ties)", POOL_BWD_HINT)
    out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    check_close(out, np.array([[[[7.0]]]]), 0, "fast pool out (2x2 over 3x3, leftovers ignored)", POOL_FWD_HINT)
    dx = max_pool_backward_fast(np.array([[[[1.0]]]]), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 1.0  # the first 7 in row-major window order (0,0)=1, (0,1)=5, (1,0)=7
    check_close(dx, expected, 0, "fast pool dx (ties: first max in row-major order)", POOL_BWD_HINT)


@pytest.mark.task2_6
@given(case=pool_cases(), ties=st.booleans(), fortran=st.booleans())
def test_pool_fast_equals_naive(case, ties, fortran):
    # (torch parity of both: test_naive_and_fast.py::test_pool_matches_torch)
    x, pool_param = case
    if ties:  # few distinct values: every window has ties; both must pick the first max
        x = np.floor(x * 2.0)
    if fortran:
        x = np.asfortranarray(x)
    x_copy, param_copy = x.copy(), dict(pool_param)
    out, cache = max_pool_forward_fast(x, pool_param)
    out_naive, cache_naive = max_pool_forward_naive(x, pool_param)
    dout = np.random.default_rng(out.size).standard_normal(out.shape)
    check_close(out, out_naive, 0, f"fast vs naive pool out ({pool_param})", POOL_FWD_HINT)
    dx = max_pool_backward_fast(dout, cache)
    check_close(max_pool_backward_naive(dout, cache_naive), dx, 1e-12,
                f"naive pool dx vs fast pool dx ({pool_param}, ties={ties})", POOL_BWD_HINT,
                scale=max_pool_backward_naive(np.abs(dout), cache_naive))  # sum of |dout| routed to each x
    assert np.array_equal(x, x_copy) and pool_param == param_copy, "an input was modified in place"


@pytest.mark.task2_6
@given(case=pool_cases(dtype=np.float32))
def test_pool_float32_stays_float32(case):
    x, pool_param = case
    out, cache = max_pool_forward_fast(x, pool_param)
    assert out.dtype == np.float32, f"float32 input gave a {out.dtype} output; keep float32"
    check_close(out, max_pool_forward_naive(x, pool_param)[0], 0, "float32 fast vs naive pool out",
                POOL_FWD_HINT)
    dout = np.ones_like(out)
    dx = max_pool_backward_fast(dout, cache)
    assert dx.shape == x.shape and dx.dtype == np.float32, (
        f"dx is {dx.shape} {dx.dtype}, expected {x.shape} float32")
    check_close(dx, max_pool_backward_naive(dout, max_pool_forward_naive(x, pool_param)[1]), 0,
                "float32 fast vs naive pool dx", POOL_BWD_HINT)


@pytest.mark.given
@pytest.mark.parametrize("x_shape, pool_param, words", [
    ((1, 1, 2, 2), {"pool_height": 3, "pool_width": 2, "stride": 1}, "larger"),
    ((1, 1, 4, 4), {"pool_height": 2, "pool_width": 2, "stride": 0}, "stride"),
    ((1, 1, 4, 4), {"pool_height": 2, "stride": 2}, "pool_width"),
])
def test_pool_rejects_bad_arguments(x_shape, pool_param, words):
    with pytest.raises(ValueError, match=words):
        max_pool_forward_fast(np.zeros(x_shape), pool_param)
    with pytest.raises(ValueError, match=words):
        max_pool_backward_fast(np.zeros((1, 1, 1, 1)),
                               LayerCache("max_pool_forward_fast", (np.zeros(x_shape), pool_param, None)))


@pytest.mark.task2_6
def test_pool_backward_rejects_wrong_dout_shape():
    _, cache = max_pool_forward_fast(np.zeros((1, 2, 4, 4)), {"pool_height": 2, "pool_width": 2, "stride": 2})
    with pytest.raises(ValueError, match="dout"):
        max_pool_backward_fast(np.zeros((1, 2, 4, 4)), cache)


# ---------------------------------------------------------------- caches (given code)

_CONV_PARAM = {"stride": 1, "pad": 1}
_POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}
_X = np.arange(2 * 2 * 4 * 4, dtype=np.float64).reshape(2, 2, 4, 4)
_W, _B = np.ones((3, 2, 3, 3)), np.zeros(3)
CACHES = {  # what each forward pass's cache looks like; built without running any student code
    "conv_forward_naive": LayerCache("conv_forward_naive", (_X, _W, _B, _CONV_PARAM)),
    "conv_forward_fast": LayerCache("conv_forward_fast", (_X, _W, _B, _CONV_PARAM, None)),
    "max_pool_forward_naive": LayerCache("max_pool_forward_naive", (_X, _POOL_PARAM)),
    "max_pool_forward_fast": LayerCache("max_pool_forward_fast", (_X, _POOL_PARAM, None)),
    "a plain conv tuple": (_X, _W, _B, _CONV_PARAM),
    "a plain pool tuple": (_X, _POOL_PARAM),
    "a relu cache": _X,
}
BACKWARDS = {  # backward pass -> (the forward it belongs to, its dout, the caches it accepts)
    conv_backward_fast: ("conv_forward_fast", np.zeros((2, 3, 4, 4)), {"conv_forward_fast"}),
    max_pool_backward_fast: ("max_pool_forward_fast", np.zeros((2, 2, 2, 2)), {"max_pool_forward_fast"}),
    conv_backward_naive: ("conv_forward_naive", np.zeros((2, 3, 4, 4)),
                          {"conv_forward_naive", "a plain conv tuple"}),
    max_pool_backward_naive: ("max_pool_forward_naive", np.zeros((2, 2, 2, 2)),
                              {"max_pool_forward_naive", "a plain pool tuple"}),
}


@pytest.mark.given
@pytest.mark.parametrize("backward, made_by", [
    pytest.param(bwd, made_by, id=f"{bwd.__name__}-{made_by}")
    for bwd, (_, _, accepted) in BACKWARDS.items() for made_by in CACHES if made_by not in accepted])
def test_backward_refuses_the_cache_of_another_layer(backward, made_by):
    forward, dout, _ = BACKWARDS[backward]
    with pytest.raises(ValueError) as err:
        backward(dout, CACHES[made_by])
    message = str(err.value)
    assert backward.__name__ in message and f"the cache returned by {forward}" in message, message
    if made_by in ("conv_forward_naive", "conv_forward_fast", "max_pool_forward_naive",
                   "max_pool_forward_fast"):
        assert f"the cache of {made_by}" in message, message


@pytest.mark.task2_5
def test_conv_caches_are_made_by_their_own_forward():
    x, w, b = np.ones((1, 2, 4, 4)), np.ones((3, 2, 3, 3)), np.zeros(3)
    _, fast = conv_forward_fast(x, w, b, _CONV_PARAM)
    _, naive = conv_forward_naive(x, w, b, _CONV_PARAM)
    with pytest.raises(ValueError, match="conv_backward_fast got the cache of conv_forward_naive"):
        conv_backward_fast(np.ones((1, 3, 4, 4)), naive)
    with pytest.raises(ValueError, match="conv_backward_naive got the cache of conv_forward_fast"):
        conv_backward_naive(np.ones((1, 3, 4, 4)), fast)
    with pytest.raises(ValueError, match="max_pool_backward_fast got the cache of conv_forward_fast"):
        max_pool_backward_fast(np.ones((1, 3, 2, 2)), fast)


@pytest.mark.given
def test_layer_cache_is_a_tagged_tuple():
    cache = LayerCache("conv_forward_fast", (_X, _W, _B, _CONV_PARAM, None))
    x, w, b, conv_param, cols = cache  # unpacks like the plain tuple
    assert x is _X and conv_param is _CONV_PARAM and cols is None and len(cache) == 5
    for twin in (copy.copy(cache), copy.deepcopy(cache), pickle.loads(pickle.dumps(cache))):
        assert isinstance(twin, LayerCache) and twin.made_by == "conv_forward_fast" and len(twin) == 5
        assert open_cache(twin, "conv_forward_fast", "conv_backward_fast") is twin
    assert "conv_forward_fast" in repr(cache) and len(repr(cache)) < 200, "repr names the layer, not the values"
    assert open_cache((1, 2), "f", "b", plain_size=2) == (1, 2)
    with pytest.raises(ValueError, match="b got a plain tuple of 3 values; pass it the cache returned by f"):
        open_cache((1, 2, 3), "f", "b", plain_size=2)
