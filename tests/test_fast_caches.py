"""What the reference fast layers cache, as docs/fast_layers.md says.

These test the instructor's reference, not a student task: a student's fast layers may
cache anything their own backward pass understands (the public and hidden tests feed
each backward pass its own forward's cache), so no public test asks for these forms.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_layers.fast_layers import (
    conv_forward_fast,
    im2col_windows,
    max_pool_backward_fast,
    max_pool_forward_fast,
)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 3), h=st.integers(2, 7), w=st.integers(2, 7),
       ph=st.integers(1, 3), pw=st.integers(1, 3), stride=st.integers(1, 3), seed=st.integers(0, 2**31 - 1),
       fortran=st.booleans())
def test_pool_argmax_is_the_flat_index_of_each_windows_first_max(n, c, h, w, ph, pw, stride, seed, fortran):
    ph, pw = min(ph, h), min(pw, w)
    x = np.random.default_rng(seed).integers(-2, 3, size=(n, c, h, w)).astype(np.float64)  # many ties
    if fortran:
        x = np.asfortranarray(x)
    out, cache = max_pool_forward_fast(x, {"pool_height": ph, "pool_width": pw, "stride": stride})
    argmax = cache[2]
    assert argmax.shape == out.shape and argmax.dtype == np.intp
    assert np.array_equal(x.reshape(-1)[argmax], out), "argmax must index x.reshape(-1) (C order) at the max"
    ni, ci, rows, cols = np.unravel_index(argmax, x.shape)
    for (a, b, y, z), row, col in zip(np.ndindex(out.shape), rows.reshape(-1), cols.reshape(-1)):
        window = x[a, b, y * stride:y * stride + ph, z * stride:z * stride + pw]
        first = np.unravel_index(np.argmax(window), window.shape)  # np.argmax: the first max, row-major
        assert (row, col) == (y * stride + first[0], z * stride + first[1])
    assert np.array_equal(ni, np.arange(n)[:, None, None, None] + 0 * argmax)
    assert np.array_equal(ci, np.arange(c)[None, :, None, None] + 0 * argmax)


def test_pool_backward_scatters_to_the_cached_places():
    x = np.zeros((1, 1, 4, 4))
    out, cache = max_pool_forward_fast(x, {"pool_height": 2, "pool_width": 2, "stride": 2})
    x_argmax = cache[2].copy()
    cache[2][...] = [[[[15, 2], [8, 5]]]]  # not the first zero of each window: the backward follows the cache
    dx = max_pool_backward_fast(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]), cache)
    assert dx.reshape(-1)[[15, 2, 8, 5]].tolist() == [1.0, 2.0, 3.0, 4.0] and dx.sum() == 10.0
    assert x_argmax.reshape(-1).tolist() == [0, 2, 8, 10]  # ties: each window's top-left corner


@pytest.mark.parametrize("x_shape, w_shape, conv_param", [
    ((3, 2, 5, 5), (4, 2, 3, 3), {"stride": 2, "pad": 1}),
    ((2, 3, 4, 6), (2, 3, 1, 3), {"stride": 1, "pad": 0}),
])
def test_conv_cols_are_the_im2col_matrix(x_shape, w_shape, conv_param):
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[0])
    _, cache = conv_forward_fast(x, w, b, conv_param)
    windows = im2col_windows(x, w_shape[2], w_shape[3], conv_param["stride"], conv_param["pad"])
    assert np.array_equal(cache[4], windows.reshape(windows.shape[0] * windows.shape[1] * windows.shape[2], -1))
