"""Output-size formulas and argument checks shared by the naive and fast layers.

Given code (no student region). Every layer calls one of the two checks first,
so a bad argument fails at once with a ValueError that names the offending value
and says what to change, instead of failing deep inside a loop or, worse,
silently producing an output of the wrong size.

The output sizes come from your conv_output_size (geometry.py, task2_0):
- conv: (H + 2 * pad - HH) must be a multiple of stride (same for W with WW);
  a stride that does not tile is refused, never rounded;
- max pool: windows may overlap (stride < pool_height) and need not tile the
  input: the rows and columns left over at the bottom/right are ignored, as in
  torch's max_pool2d, so the pool output size is that of the input cropped to
  the rows and columns the windows reach.
"""
import numbers

import numpy as np

from cs_layers.geometry import conv_output_size


def _positive_int(value, name, what):
    """Return value as an int, or raise ValueError unless it is an integer >= 1."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}; {what}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}; {what}")
    return int(value)


def _get(param, key, param_name):
    if not isinstance(param, dict):
        raise ValueError(f"{param_name} must be a dict, got {type(param).__name__}")
    if key not in param:
        raise ValueError(
            f"{param_name} is missing the key {key!r} (it has {sorted(param)}); "
            f"pass e.g. {param_name}[{key!r}] = 1")
    return param[key]


def _check_ndim(a, ndim, name, layout):
    if np.ndim(a) != ndim:
        raise ValueError(
            f"{name} must have {ndim} dimensions {layout}, got shape {np.shape(a)}; "
            f"reshape it first")


def conv_output_shape(x_shape, w_shape, stride, pad):
    """Output spatial size of a convolution.

    Inputs:
    - x_shape: (N, C, H, W)
    - w_shape: (F, C, HH, WW)
    - stride, pad: ints

    Returns (H_out, W_out), each from conv_output_size (task2_0).
    """
    _, _, H, W = x_shape
    _, _, HH, WW = w_shape
    return conv_output_size(H, HH, stride, pad), conv_output_size(W, WW, stride, pad)


def pool_output_shape(x_shape, pool_height, pool_width, stride):
    """Output spatial size of max pooling.

    Inputs:
    - x_shape: (N, C, H, W)
    - pool_height, pool_width, stride: ints

    Returns (H_out, W_out): conv_output_size (task2_0) of the input cropped to the
    rows and columns the windows reach (the leftover ones are ignored).
    """
    _, _, H, W = x_shape
    reached_h = H - (H - pool_height) % stride  # rows the windows reach
    reached_w = W - (W - pool_width) % stride
    return conv_output_size(reached_h, pool_height, stride), conv_output_size(reached_w, pool_width, stride)


def check_conv_args(x, w, b, conv_param):
    """Validate the arguments of a conv forward pass.

    Inputs: as conv_forward_naive: x (N, C, H, W), w (F, C, HH, WW), b (F,),
    conv_param {'stride': int >= 1, 'pad': int >= 0}.

    Returns (stride, pad, H_out, W_out) as ints.
    Raises ValueError naming the offending value when anything does not fit.
    """
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    _check_ndim(w, 4, "w", "(F, C, HH, WW)")
    N, C, H, W = np.shape(x)
    F, Cw, HH, WW = np.shape(w)
    if C != Cw:
        raise ValueError(
            f"x has C={C} channels (shape {np.shape(x)}) but w expects C={Cw} "
            f"(shape {np.shape(w)}); w must have shape (F, {C}, HH, WW)")
    if min(C, H, W, F, HH, WW) < 1:
        raise ValueError(
            f"empty dimension: x shape {np.shape(x)}, w shape {np.shape(w)}; "
            f"C, H, W, F, HH, WW must all be >= 1")
    if np.shape(b) != (F,):
        raise ValueError(f"b must have shape (F,) = ({F},) to match w, got {np.shape(b)}")
    stride = _positive_int(_get(conv_param, "stride", "conv_param"), "conv_param['stride']",
                           "use a stride of 1 or more")
    pad = _get(conv_param, "pad", "conv_param")
    if isinstance(pad, (bool, np.bool_)) or not isinstance(pad, numbers.Integral):
        raise ValueError(f"conv_param['pad'] must be an integer, got {pad!r}")
    if pad < 0:
        raise ValueError(f"conv_param['pad'] must be >= 0, got {pad}; use pad=0 for no padding")
    pad = int(pad)
    for dim, size, k in (("H", H, HH), ("W", W, WW)):
        span = size + 2 * pad - k
        if span < 0:
            raise ValueError(
                f"the kernel ({HH}x{WW}) is larger than the padded input "
                f"({H + 2 * pad}x{W + 2 * pad}) along {dim}; use a smaller kernel or more padding")
        if span % stride != 0:
            raise ValueError(
                f"stride={stride} and pad={pad} do not tile the input along {dim}: "
                f"({dim}={size} + 2*pad - {k}) = {span} is not a multiple of stride={stride}; "
                f"choose stride and pad so that it is")
    H_out, W_out = conv_output_shape((N, C, H, W), (F, C, HH, WW), stride, pad)
    return stride, pad, H_out, W_out


def check_pool_args(x, pool_param):
    """Validate the arguments of a max-pool forward pass.

    Inputs: as max_pool_forward_naive: x (N, C, H, W), pool_param
    {'pool_height': int >= 1, 'pool_width': int >= 1, 'stride': int >= 1}.

    Returns (pool_height, pool_width, stride, H_out, W_out) as ints.
    Raises ValueError naming the offending value when anything does not fit.
    Windows may overlap and need not tile the input (leftover rows/columns
    are ignored), but a window larger than the input is refused.
    """
    _check_ndim(x, 4, "x", "(N, C, H, W)")
    N, C, H, W = np.shape(x)
    if min(C, H, W) < 1:
        raise ValueError(f"empty dimension: x shape {np.shape(x)}; C, H, W must all be >= 1")
    ph = _positive_int(_get(pool_param, "pool_height", "pool_param"), "pool_param['pool_height']",
                       "use a window of at least 1x1")
    pw = _positive_int(_get(pool_param, "pool_width", "pool_param"), "pool_param['pool_width']",
                       "use a window of at least 1x1")
    stride = _positive_int(_get(pool_param, "stride", "pool_param"), "pool_param['stride']",
                           "use a stride of 1 or more")
    if ph > H or pw > W:
        raise ValueError(
            f"the pool window {ph}x{pw} is larger than the input {H}x{W} "
            f"(x shape {np.shape(x)}); use a window no larger than the input")
    H_out, W_out = pool_output_shape((N, C, H, W), ph, pw, stride)
    return ph, pw, stride, H_out, W_out


def check_dout(dout, shape, layer):
    """Raise ValueError unless the upstream gradient has the forward output's shape."""
    if np.shape(dout) != tuple(shape):
        raise ValueError(
            f"{layer}: dout has shape {np.shape(dout)} but the forward output had shape "
            f"{tuple(shape)}; pass the gradient of the output of this same forward call")


def check_affine_args(x, w, b):
    """Validate affine_forward's arguments: x (N, d_1, ..., d_k), w (D, M), b (M,).

    Returns (N, D) with D = d_1 * ... * d_k.
    """
    N = np.shape(x)[0]
    D = int(np.prod(np.shape(x)[1:]))
    if np.ndim(w) != 2 or np.shape(w)[0] != D or np.shape(b) != (np.shape(w)[1],):
        raise ValueError(
            f"affine_forward: x of shape {np.shape(x)} flattens to ({N}, {D}), so w must be "
            f"({D}, M) and b (M,); got w {np.shape(w)} and b {np.shape(b)}")
    return N, D


def check_softmax_args(x, y):
    """Validate softmax_loss's arguments: scores x (N, C), integer labels y (N,) in [0, C).

    Returns y as an array.
    """
    if np.ndim(x) != 2 or np.shape(y) != (np.shape(x)[0],):
        raise ValueError(
            f"softmax_loss: x must be (N, C) and y (N,); got x {np.shape(x)} and y {np.shape(y)}")
    y = np.asarray(y)
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= x.shape[1]):
        raise ValueError(
            f"softmax_loss: labels y must be integers in [0, {x.shape[1]}); got dtype {y.dtype}, "
            f"min {y.min()}, max {y.max()}; check your labels match the number of classes")
    return y


def check_batchnorm_args(x, gamma, beta, bn_param):
    """Validate batchnorm_forward's arguments: x (N, D), gamma and beta (D,), bn_param['mode'].

    Returns the mode, 'train' or 'test'.
    """
    mode = bn_param.get("mode") if isinstance(bn_param, dict) else None
    if mode not in ("train", "test"):
        raise ValueError(f"bn_param['mode'] must be 'train' or 'test', got {mode!r}")
    if np.ndim(x) != 2:
        raise ValueError(f"batchnorm_forward: x must be (N, D), got shape {np.shape(x)}")
    D = np.shape(x)[1]
    if np.shape(gamma) != (D,) or np.shape(beta) != (D,):
        raise ValueError(
            f"batchnorm_forward: gamma and beta must have shape ({D},), "
            f"got {np.shape(gamma)} and {np.shape(beta)}")
    return mode


def check_nchw(a, layer, name):
    """Raise ValueError unless `a` (the argument `name` of `layer`) has 4 dimensions (N, C, H, W)."""
    if np.ndim(a) != 4:
        got = f"shape {np.shape(a)}" if name == "x" else f"{np.shape(a)}"
        raise ValueError(f"{layer}: {name} must be (N, C, H, W), got {got}")


def check_groupnorm_args(x, gamma, beta, G):
    """Validate spatial_groupnorm_forward's arguments: x (N, C, H, W), gamma and beta
    (1, C, 1, 1), G a positive integer dividing C."""
    check_nchw(x, "spatial_groupnorm_forward", "x")
    C = np.shape(x)[1]
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G < 1 or C % G:
        raise ValueError(f"spatial_groupnorm_forward: G={G!r} must be a positive integer dividing C={C}")
    if np.shape(gamma) != (1, C, 1, 1) or np.shape(beta) != (1, C, 1, 1):
        raise ValueError(
            f"spatial_groupnorm_forward: gamma and beta must have shape (1, {C}, 1, 1), "
            f"got {np.shape(gamma)} and {np.shape(beta)}")
