"""Conv geometry (task2_0): output sizes, parameter and multiply-add counts, receptive fields.

The arithmetic of the conv lectures, as four functions that the rest of the
package runs on: the shape checks in shapes.py and ThreeLayerConvNet call your
conv_output_size and conv_param_count, so a mistake here shows up everywhere.
(The grader runs the hidden tests of every later task on the reference
geometry, so a mistake here costs task2_0 alone; `python -m cs_layers.check`
says so when it sees task2_0 failing.)

Vocabulary (CS231n): an input volume (C, H, W), F filters of shape
(C, HH, WW), stride S, zero padding P on every side, output (F, H', W').

layer_table and print_layer_table at the bottom are given code: they print the
geometry of a stack of layers with your four functions.
"""
import numbers


def _int(value, name, low):
    """value as an int, or ValueError unless it is an integer >= low."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return int(value)


def _pair(kernel_size, name="kernel_size"):
    """(HH, WW) from an int k (a k x k kernel) or a pair (HH, WW)."""
    if isinstance(kernel_size, (tuple, list)):
        if len(kernel_size) != 2:
            raise ValueError(f"{name} must be an int or a pair (HH, WW), got {kernel_size!r}")
        return _int(kernel_size[0], f"{name}[0]", 1), _int(kernel_size[1], f"{name}[1]", 1)
    k = _int(kernel_size, name, 1)
    return k, k


def conv_output_size(size, kernel, stride=1, pad=0):
    """Output size of a convolution along one spatial dimension.

    Inputs:
    - size: H (or W), the input size along this dimension, >= 1
    - kernel: HH (or WW), the filter size along it, >= 1
    - stride: S >= 1, the step between neighbouring windows
    - pad: P >= 0, zeros added on each side

    Returns H' = (H - HH + 2P) / S + 1, an int.

    Raises ValueError, naming the numbers, when the kernel is larger than the
    padded input (H + 2P < HH), or when the stride does not tile the padded
    input: (H - HH + 2P) is not a multiple of S, so the last window would hang
    over the edge ("doesn't fit": 7x7 input, 3x3 filter, stride 3). The conv
    layers refuse such a stride rather than silently drop rows.
    """
    size, kernel = _int(size, "size", 1), _int(kernel, "kernel", 1)
    stride, pad = _int(stride, "stride", 1), _int(pad, "pad", 0)
    # task2_0: conv_output_size
    ### BEGIN SOLUTION
    span = size + 2 * pad - kernel  # room the window can slide over
    if size + 2 * pad < kernel:
        raise ValueError(f"a kernel of {kernel} does not fit in an input of {size} padded by {pad} "
                         f"on each side ({size + 2 * pad}); use a smaller kernel or more padding")
    if span % stride:
        raise ValueError(f"stride {stride} does not tile: (size {size} - kernel {kernel} + 2 * pad {pad}) "
                         f"= {span} is not a multiple of {stride}; change the stride or the padding")
    return span // stride + 1
    ### END SOLUTION


def conv_param_count(in_channels, out_channels, kernel_size, bias=True):
    """Number of learnable parameters of a conv layer.

    Inputs:
    - in_channels: C, the depth of the input volume
    - out_channels: F, the number of filters
    - kernel_size: HH for an HH x HH kernel, or a pair (HH, WW)
    - bias: whether each filter has a bias (one number per filter)

    Returns F * (C * HH * WW + 1) with a bias, F * C * HH * WW without, an int.
    Each filter spans the full depth C of its input: ten 5x5 filters on a
    3-channel input hold 10 * (3 * 5 * 5 + 1) = 760 parameters.
    """
    C, F = _int(in_channels, "in_channels", 1), _int(out_channels, "out_channels", 1)
    HH, WW = _pair(kernel_size)
    # task2_0: conv_param_count
    ### BEGIN SOLUTION
    per_filter = C * HH * WW + (1 if bias else 0)
    return F * per_filter
    ### END SOLUTION


def conv_macs(input_shape, out_channels, kernel_size, stride=1, pad=0):
    """Multiply-adds of one conv forward pass on one image.

    Inputs:
    - input_shape: (C, H, W) of one image
    - out_channels: F, the number of filters
    - kernel_size: HH, or a pair (HH, WW)
    - stride, pad: S and P, the same along H and W

    Returns F * H' * W' * (C * HH * WW), an int: every one of the F * H' * W'
    outputs is a dot product of a C x HH x WW window with a filter (the bias
    add is not counted). 3x32x32 input, ten 5x5 filters, stride 1, pad 2:
    10 * 32 * 32 * 75 = 768,000. Raises ValueError as conv_output_size does.
    """
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    C, H, W = (_int(n, name, 1) for n, name in zip(input_shape, ("C", "H", "W")))
    F = _int(out_channels, "out_channels", 1)
    HH, WW = _pair(kernel_size)
    # task2_0: conv_macs
    ### BEGIN SOLUTION
    H_out = conv_output_size(H, HH, stride, pad)
    W_out = conv_output_size(W, WW, stride, pad)
    return F * H_out * W_out * (C * HH * WW)
    ### END SOLUTION


def receptive_field(layers):
    """Side, in input pixels, of the region that one output unit of a stack sees.

    Inputs:
    - layers: a list of (kernel, stride) pairs, from the input up; a conv
      layer and a pooling layer both count (a 2x2 max pool with stride 2 is
      (2, 2)); padding does not change the receptive field

    Returns an int: 1 for an empty stack (a unit is one input pixel). A layer
    with kernel K widens the field by K - 1 units of the layer below it, and
    one unit there is as far apart in the input as the product of the strides
    of all layers below: L stride-1 layers of K x K give 1 + L * (K - 1).
    """
    if not isinstance(layers, (tuple, list)):
        raise ValueError(f"layers must be a list of (kernel, stride) pairs, got {type(layers).__name__}")
    checked = []
    for i, layer in enumerate(layers):
        if not isinstance(layer, (tuple, list)) or len(layer) != 2:
            raise ValueError(f"layers[{i}] must be a pair (kernel, stride), got {layer!r}")
        checked.append((_int(layer[0], f"layers[{i}] kernel", 1), _int(layer[1], f"layers[{i}] stride", 1)))
    # task2_0: receptive_field
    ### BEGIN SOLUTION
    field, jump = 1, 1  # field side and input distance between neighbouring units, so far
    for kernel, stride in checked:
        field += (kernel - 1) * jump
        jump *= stride
    return field
    ### END SOLUTION


# ---------------------------------------------------------------- given: a table of a stack of layers

def layer_table(input_shape, layers):
    """The geometry of a stack of layers, computed with the four functions above.

    Inputs:
    - input_shape: (C, H, W) of one image
    - layers: a list of tuples, from the input up:
        ("conv", F, K, S, P)  F filters of K x K, stride S, pad P
        ("pool", K, S)        K x K max pooling, stride S (leftover rows dropped)
        ("relu",)             elementwise, changes nothing here
        ("affine", M)         fully connected to M outputs: a conv whose kernel
                              covers the whole input volume

    Returns a list of dicts, one per layer: name, shape (C, H, W) of its
    output, params, macs and field (receptive field side in input pixels).
    """
    C, H, W = input_shape
    rows, stack = [], []
    for layer in layers:
        kind = layer[0]
        params = macs = 0
        if kind == "conv":
            _, F, K, S, P = layer
            params = conv_param_count(C, F, K)
            macs = conv_macs((C, H, W), F, K, S, P)
            C, H, W = F, conv_output_size(H, K, S, P), conv_output_size(W, K, S, P)
            stack.append((K, S))
            name = f"conv {K}x{K}/{S}, {F} filters"
        elif kind == "pool":
            _, K, S = layer
            H, W = (conv_output_size(n - (n - K) % S, K, S) for n in (H, W))  # drop the leftover rows
            stack.append((K, S))
            name = f"max pool {K}x{K}/{S}"
        elif kind == "relu":
            name = "relu"
        elif kind == "affine":
            _, M = layer
            params = conv_param_count(C, M, (H, W))
            macs = conv_macs((C, H, W), M, (H, W))
            stack.append((max(H, W), max(H, W)))
            C, H, W = M, 1, 1
            name = f"affine -> {M}"
        else:
            raise ValueError(f"unknown layer {layer!r}; use 'conv', 'pool', 'relu' or 'affine'")
        rows.append({"name": name, "shape": (C, H, W), "params": params, "macs": macs,
                     "field": receptive_field(stack)})
    return rows


def print_layer_table(input_shape, layers, title=None):
    """Print layer_table(input_shape, layers) as aligned text, with totals; returns the rows."""
    rows = layer_table(input_shape, layers)
    lines = [] if title is None else [title]
    lines.append(f"{'layer':<26} {'output (C, H, W)':>18} {'params':>12} {'mult-adds':>14} {'field':>6}")
    lines.append(f"{'input':<26} {str(tuple(input_shape)):>18} {'':>12} {'':>14} {1:>6}")
    for r in rows:
        lines.append(f"{r['name']:<26} {str(r['shape']):>18} {r['params']:>12,} {r['macs']:>14,} {r['field']:>6}")
    lines.append(f"{'total':<26} {'':>18} {sum(r['params'] for r in rows):>12,} "
                 f"{sum(r['macs'] for r in rows):>14,}")
    print("\n".join(lines))
    return rows
