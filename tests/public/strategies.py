"""Hypothesis strategies for the layer tests: valid conv and pool arguments.

Shapes, strides and pads are drawn by hypothesis (so failures shrink to the
smallest failing shape); array values come from a numpy generator seeded by a
drawn integer (fast, and reproducible from the failing example).

- conv_cases(): (x, w, b, conv_param) with rectangular inputs, non-square
  kernels, stride 1..3 and pad 0..2, only in combinations that tile the input.
- pool_cases(): (x, pool_param) with non-square windows, overlapping windows
  (stride < window) and windows that leave rows/columns over. The values of x
  are all distinct and spaced apart, so the max of every window is unique and
  central differences never cross a tie.
"""
import numpy as np
from hypothesis import strategies as st


def _tiling_sizes(k, stride, pad, max_hw):
    """Input sizes h in 1..max_hw with h + 2*pad >= k and (h + 2*pad - k) % stride == 0."""
    return [h for h in range(1, max_hw + 1) if h + 2 * pad >= k and (h + 2 * pad - k) % stride == 0]


@st.composite
def conv_cases(draw, dtype=np.float64, max_n=3, max_c=3, max_hw=9, max_f=3, max_k=4,
               max_stride=3, max_pad=2):
    """Draw a valid (x, w, b, conv_param) for conv_forward.

    x (N, C, H, W), w (F, C, HH, WW), b (F,), conv_param {'stride', 'pad'},
    all arrays of the given dtype, with (H + 2*pad - HH) % stride == 0 and the
    same for W.
    """
    N = draw(st.integers(1, max_n))
    C = draw(st.integers(1, max_c))
    F = draw(st.integers(1, max_f))
    HH = draw(st.integers(1, min(max_k, max_hw)))
    WW = draw(st.integers(1, min(max_k, max_hw)))
    stride = draw(st.integers(1, max_stride))
    pad = draw(st.integers(0, max_pad))
    hs, ws = _tiling_sizes(HH, stride, pad, max_hw), _tiling_sizes(WW, stride, pad, max_hw)
    if not hs or not ws:  # a large stride with a tiny max_hw: fall back to stride 1
        stride = 1
        hs, ws = _tiling_sizes(HH, stride, pad, max_hw), _tiling_sizes(WW, stride, pad, max_hw)
    H = draw(st.sampled_from(hs))
    W = draw(st.sampled_from(ws))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    w = rng.standard_normal((F, C, HH, WW)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    return x, w, b, {"stride": stride, "pad": pad}


@st.composite
def pool_cases(draw, dtype=np.float64, max_n=3, max_c=3, max_hw=9, max_pool=4, max_stride=3):
    """Draw a valid (x, pool_param) for max_pool_forward.

    x (N, C, H, W) with distinct values at least about 4 / x.size apart,
    pool_param {'pool_height', 'pool_width', 'stride'} with the window no
    larger than the input; windows may overlap or not tile.
    """
    ph = draw(st.integers(1, min(max_pool, max_hw)))
    pw = draw(st.integers(1, min(max_pool, max_hw)))
    stride = draw(st.integers(1, max_stride))
    N = draw(st.integers(1, max_n))
    C = draw(st.integers(1, max_c))
    H = draw(st.integers(ph, max_hw))
    W = draw(st.integers(pw, max_hw))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    size = N * C * H * W
    x = ((rng.permutation(size) - size / 2) * (4.0 / size)).reshape(N, C, H, W).astype(dtype)
    return x, {"pool_height": ph, "pool_width": pw, "stride": stride}
