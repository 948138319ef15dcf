"""Bad input raises ValueError naming the offending value (given argument checks).

The checks are given code that runs before any student code, so these tests
pass even while a layer is still a stub: they carry the `given` marker, not a
task marker (a task's tests must fail until the task is done). The two dout checks of
the backward passes are the exception: they compare dout with the output size, which
comes from your conv_output_size, so they carry task2_0's marker.
"""
import numpy as np
import pytest

from cs_layers import fast_layers, layers
from cs_layers.caches import LayerCache
from cs_layers.cnn import ThreeLayerConvNet

x4 = np.zeros((2, 3, 5, 5))
w3 = np.zeros((4, 3, 3, 3))
b4 = np.zeros(4)

CONV_CASES = [  # (x, w, b, conv_param, regex the message must match)
    (x4, np.zeros((4, 2, 3, 3)), b4, {"stride": 1, "pad": 1}, r"C=3.*C=2"),
    (x4, w3, np.zeros(5), {"stride": 1, "pad": 1}, r"b must have shape.*\(4,\).*\(5,\)"),
    (x4, w3, b4, {"stride": 3, "pad": 1}, r"stride=3 and pad=1 do not tile"),
    (x4, w3, b4, {"stride": 1, "pad": -1}, r"pad.*-1"),
    (x4, w3, b4, {"stride": 0, "pad": 1}, r"stride.*0"),
    (x4, w3, b4, {"stride": -2, "pad": 1}, r"stride.*-2"),
    (x4, w3, b4, {"stride": 1.5, "pad": 1}, r"stride.*integer.*1\.5"),
    (x4, w3, b4, {"stride": 1}, r"missing the key 'pad'"),
    (np.zeros((3, 5, 5)), w3, b4, {"stride": 1, "pad": 1}, r"x must have 4 dimensions.*\(3, 5, 5\)"),
    (np.zeros((2, 3, 2, 2)), w3, b4, {"stride": 1, "pad": 0}, r"larger than the padded input"),
]
CONV_IDS = ["C-mismatch", "b-shape", "no-tiling", "negative-pad", "zero-stride", "negative-stride",
            "float-stride", "missing-key", "x-ndim", "kernel-too-big"]

POOL_CASES = [  # (x, pool_param, regex)
    (x4, {"pool_height": 6, "pool_width": 2, "stride": 2}, r"pool window 6x2 is larger than the input 5x5"),
    (x4, {"pool_height": 2, "pool_width": 2, "stride": 0}, r"stride.*0"),
    (x4, {"pool_height": 0, "pool_width": 2, "stride": 1}, r"pool_height.*0"),
    (x4, {"pool_height": 2, "stride": 2}, r"missing the key 'pool_width'"),
    (np.zeros((5, 5)), {"pool_height": 2, "pool_width": 2, "stride": 2}, r"x must have 4 dimensions"),
]
POOL_IDS = ["window-too-big", "zero-stride", "zero-window", "missing-key", "x-ndim"]

CONV_FWD = [pytest.param(layers.conv_forward_naive, marks=pytest.mark.given, id="naive"),
            pytest.param(fast_layers.conv_forward_fast, marks=pytest.mark.given, id="fast")]
POOL_FWD = [pytest.param(layers.max_pool_forward_naive, marks=pytest.mark.given, id="naive"),
            pytest.param(fast_layers.max_pool_forward_fast, marks=pytest.mark.given, id="fast")]


@pytest.mark.parametrize("forward", CONV_FWD)
@pytest.mark.parametrize("x, w, b, conv_param, match", CONV_CASES, ids=CONV_IDS)
def test_conv_forward_refuses(forward, x, w, b, conv_param, match):
    with pytest.raises(ValueError, match=match):
        forward(x, w, b, conv_param)


@pytest.mark.parametrize("forward", POOL_FWD)
@pytest.mark.parametrize("x, pool_param, match", POOL_CASES, ids=POOL_IDS)
def test_pool_forward_refuses(forward, x, pool_param, match):
    with pytest.raises(ValueError, match=match):
        forward(x, pool_param)


@pytest.mark.parametrize("backward", [
    pytest.param(layers.conv_backward_naive, marks=pytest.mark.task2_0, id="naive"),
    pytest.param(fast_layers.conv_backward_fast, marks=pytest.mark.task2_0, id="fast")])
def test_conv_backward_refuses_wrong_dout(backward):
    cache = (x4, w3, b4, {"stride": 1, "pad": 1})
    if backward is fast_layers.conv_backward_fast:  # its cache holds the columns too (unused here)
        cache = LayerCache("conv_forward_fast", cache + (None,))
    with pytest.raises(ValueError, match=r"dout has shape \(2, 4, 4, 4\).*\(2, 4, 5, 5\)"):
        backward(np.zeros((2, 4, 4, 4)), cache)


@pytest.mark.parametrize("backward", [
    pytest.param(layers.max_pool_backward_naive, marks=pytest.mark.task2_0, id="naive"),
    pytest.param(fast_layers.max_pool_backward_fast, marks=pytest.mark.task2_0, id="fast")])
def test_pool_backward_refuses_wrong_dout(backward):
    cache = (x4, {"pool_height": 2, "pool_width": 2, "stride": 1})
    if backward is fast_layers.max_pool_backward_fast:  # its cache holds the argmax too (unused here)
        cache = LayerCache("max_pool_forward_fast", cache + (None,))
    with pytest.raises(ValueError, match=r"dout has shape \(2, 3, 2, 2\).*\(2, 3, 4, 4\)"):
        backward(np.zeros((2, 3, 2, 2)), cache)


@pytest.mark.given
def test_affine_and_softmax_refuse():
    with pytest.raises(ValueError, match=r"\(2, 75\).*w \(74, 3\)"):
        layers.affine_forward(x4, np.zeros((74, 3)), np.zeros(3))
    with pytest.raises(ValueError, match=r"integers in \[0, 3\).*max 3"):
        layers.softmax_loss(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match=r"y \(3,\)"):
        layers.softmax_loss(np.zeros((2, 3)), np.array([0, 1, 2]))


@pytest.mark.given
def test_batchnorm_refuses():
    with pytest.raises(ValueError, match=r"'train' or 'test', got 'eval'"):
        layers.batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3), {"mode": "eval"})
    with pytest.raises(ValueError, match=r"gamma and beta must have shape \(3,\)"):
        layers.batchnorm_forward(np.zeros((4, 3)), np.ones(4), np.zeros(3), {"mode": "train"})
    with pytest.raises(ValueError, match=r"x must be \(N, C, H, W\)"):
        layers.spatial_batchnorm_forward(np.zeros((4, 3)), np.ones(3), np.zeros(3), {"mode": "train"})


@pytest.mark.given
def test_groupnorm_refuses():
    gamma, beta = np.ones((1, 3, 1, 1)), np.zeros((1, 3, 1, 1))
    with pytest.raises(ValueError, match=r"G=2 must be a positive integer dividing C=3"):
        layers.spatial_groupnorm_forward(x4, gamma, beta, 2, {"eps": 1e-5})
    with pytest.raises(ValueError, match=r"\(1, 3, 1, 1\).*\(3,\)"):
        layers.spatial_groupnorm_forward(x4, np.ones(3), np.zeros(3), 3, {"eps": 1e-5})


@pytest.mark.given
def test_convnet_refuses_tiny_images():
    with pytest.raises(ValueError, match=r"1x1.*too small"):
        ThreeLayerConvNet(input_dim=(3, 1, 1))
