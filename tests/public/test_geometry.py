"""Public checks for task2_0 (cs_layers/geometry.py): the lecture examples by hand, brute force
(counting window positions, counting the parameters and the multiply-adds of a real torch
conv, tracing which input pixels reach one output unit) and hypothesis properties."""
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from cs_layers.geometry import conv_macs, conv_output_size, conv_param_count, layer_table, receptive_field


def _window_starts(size, kernel, stride, pad):
    """Brute force: every start of a window that fits in the padded input, stepping by stride."""
    return [s for s in range(0, size + 2 * pad, stride) if s + kernel <= size + 2 * pad]


@pytest.mark.task2_0
def test_lecture_example_output_params_and_macs():
    # 3x32x32 input, ten 5x5 filters, stride 1, pad 2: output 10x32x32, 760 parameters, 768,000 mult-adds
    assert conv_output_size(32, 5, stride=1, pad=2) == 32, "32x32 input, 5x5 filter, stride 1, pad 2 keeps 32"
    assert conv_param_count(3, 10, 5) == 760, "each filter holds 5*5*3 weights + 1 bias = 76; ten of them: 760"
    assert conv_macs((3, 32, 32), 10, 5, stride=1, pad=2) == 768_000, \
        "10*32*32 outputs, each a dot product of 5*5*3 = 75 numbers: 768,000"


@pytest.mark.task2_0
def test_lecture_strides_on_a_7x7_input():
    # 7x7 input, 3x3 filter: stride 1 gives 5, stride 2 gives 3, stride 3 does not fit
    assert conv_output_size(7, 3) == 5
    assert conv_output_size(7, 3, stride=2) == 3
    assert conv_output_size(7, 3, stride=1, pad=1) == 7, "pad (K - 1) / 2 with stride 1 keeps the size"


@pytest.mark.task2_0
def test_a_stride_that_does_not_tile_raises_with_the_numbers():
    with pytest.raises(ValueError) as e:
        conv_output_size(7, 3, stride=3)
    message = str(e.value)
    assert "3" in message and "7" in message and "4" in message, \
        f"the message must name the numbers (size 7, kernel 3, stride 3, span 7 - 3 = 4); got {message!r}"
    with pytest.raises(ValueError):
        conv_output_size(32, 5, stride=2, pad=0)     # 27 is odd
    with pytest.raises(ValueError):
        conv_output_size(3, 5)                       # a 5x5 kernel on a 3x3 input, no padding
    with pytest.raises(ValueError):
        conv_macs((3, 7, 7), 4, 3, stride=3)         # conv_macs refuses it too


@pytest.mark.task2_0
def test_alexnet_conv1():
    # 227x227x3 input, 96 11x11 filters at stride 4, pad 0 -> 55x55x96
    assert conv_output_size(227, 11, stride=4) == 55
    assert conv_param_count(3, 96, 11) == (11 * 11 * 3 + 1) * 96 == 34_944
    assert conv_param_count(3, 96, 11, bias=False) == 34_848
    assert conv_macs((3, 227, 227), 96, 11, stride=4) == 96 * 55 * 55 * 363


@pytest.mark.task2_0
def test_one_by_one_conv_and_non_square_kernels():
    # a 1x1 conv mixes channels only: 56x56x64 -> 32 filters of 1x1x64
    assert conv_output_size(56, 1) == 56
    assert conv_param_count(64, 32, 1) == 32 * 65
    assert conv_macs((64, 56, 56), 32, 1) == 32 * 56 * 56 * 64
    assert conv_param_count(3, 4, (3, 5)) == 4 * (3 * 3 * 5 + 1), "kernel_size (HH, WW) = (3, 5)"
    assert conv_macs((2, 6, 8), 3, (3, 5), stride=1, pad=1) == 3 * 6 * 6 * (2 * 3 * 5)


@pytest.mark.task2_0
def test_vgg_block_receptive_field_grows_by_two_per_layer():
    assert receptive_field([]) == 1, "no layer: an output unit is one input pixel"
    assert [receptive_field([(3, 1)] * n) for n in range(1, 5)] == [3, 5, 7, 9], \
        "each 3x3 stride-1 conv adds K - 1 = 2: 1 + L * (K - 1)"
    assert receptive_field([(5, 1), (5, 1)]) == 9
    # after a 2x2 pool with stride 2, one unit below is 2 input pixels apart: a 3x3 conv adds 2 * 2
    assert receptive_field([(3, 1), (3, 1), (2, 2), (3, 1)]) == 6 + 4
    assert receptive_field([(11, 4), (3, 2)]) == 11 + 2 * 4, "AlexNet conv1 then pool1: 19"


@pytest.mark.task2_0
def test_layer_table_of_the_default_convnet():
    rows = layer_table((3, 32, 32), [("conv", 32, 7, 1, 3), ("relu",), ("pool", 2, 2), ("affine", 100),
                                     ("relu",), ("affine", 10)])
    assert [r["shape"] for r in rows] == [(32, 32, 32), (32, 32, 32), (32, 16, 16), (100, 1, 1), (100, 1, 1),
                                          (10, 1, 1)]
    assert [r["params"] for r in rows] == [32 * (3 * 49 + 1), 0, 0, 32 * 16 * 16 * 100 + 100, 0, 1010]
    assert rows[0]["macs"] == 32 * 32 * 32 * 3 * 49 and rows[2]["field"] == 8


@pytest.mark.task2_0
@given(size=st.integers(1, 40), kernel=st.integers(1, 9), stride=st.integers(1, 5), pad=st.integers(0, 4))
def test_output_size_counts_the_window_positions(size, kernel, stride, pad):
    starts = _window_starts(size, kernel, stride, pad)
    if starts and starts[-1] + kernel == size + 2 * pad:   # the last window ends at the padded edge
        assert conv_output_size(size, kernel, stride, pad) == len(starts), \
            f"size {size}, kernel {kernel}, stride {stride}, pad {pad}: the window fits at {len(starts)} places"
    else:
        with pytest.raises(ValueError):
            conv_output_size(size, kernel, stride, pad)


@pytest.mark.task2_0
@given(C=st.integers(1, 4), F=st.integers(1, 4), HH=st.integers(1, 4), WW=st.integers(1, 4),
       bias=st.booleans())
def test_param_count_matches_a_torch_conv(C, F, HH, WW, bias):
    conv = torch.nn.Conv2d(C, F, (HH, WW), bias=bias)
    expected = sum(p.numel() for p in conv.parameters())
    assert conv_param_count(C, F, (HH, WW), bias=bias) == expected
    if HH == WW:
        assert conv_param_count(C, F, HH, bias=bias) == expected


@pytest.mark.task2_0
@given(C=st.integers(1, 3), H=st.integers(1, 9), W=st.integers(1, 9), F=st.integers(1, 3),
       K=st.integers(1, 4), stride=st.integers(1, 3), pad=st.integers(0, 2))
def test_macs_count_the_products_of_a_real_conv(C, H, W, F, K, stride, pad):
    tiles = [(s := _window_starts(n, K, stride, pad)) and s[-1] + K == n + 2 * pad for n in (H, W)]
    if not all(tiles):
        return
    # each output of a conv with all-ones input and weights is the number of products it sums
    out = torch.nn.functional.conv2d(torch.ones(1, C, H + 2 * pad, W + 2 * pad, dtype=torch.float64),
                                     torch.ones(F, C, K, K, dtype=torch.float64), stride=stride)
    assert out.shape[2:] == (conv_output_size(H, K, stride, pad), conv_output_size(W, K, stride, pad))
    assert conv_macs((C, H, W), F, K, stride, pad) == int(out.sum())


@pytest.mark.task2_0
@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), max_size=4))
def test_receptive_field_is_what_one_output_unit_sees(layers):
    # trace back which input pixels reach output unit 0: 1-d is enough (the field is square)
    reach = {0}
    for kernel, stride in reversed(layers):
        reach = {u * stride + k for u in reach for k in range(kernel)}
    assert receptive_field(layers) == max(reach) - min(reach) + 1, f"stack {layers}"
    assert receptive_field([tuple(layer) for layer in layers]) == receptive_field([list(layer) for layer in layers])


@pytest.mark.given
@pytest.mark.parametrize("call", [
    lambda: conv_output_size(0, 3), lambda: conv_output_size(7, 3, stride=0), lambda: conv_output_size(7, 3, pad=-1),
    lambda: conv_output_size(7.0, 3), lambda: conv_param_count(3, 10, (5, 5, 5)), lambda: conv_macs((32, 32), 10, 5),
    lambda: receptive_field([(3,)]), lambda: receptive_field([(0, 1)])])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
