"""The reference does not compute gradients it throws away.

These test the instructor's reference, not a student task: the public tests allow a
student's layer to ignore need_dx (skipping is an optimisation, never required).
"""
import numpy as np

from cs_layers import layer_utils
from cs_layers.cnn import ThreeLayerConvNet
from cs_layers.fast_layers import conv_backward_fast, conv_forward_fast
from cs_layers.layers import conv_backward_naive, conv_forward_naive


def test_the_model_asks_its_first_layer_for_no_dx(monkeypatch):
    asked = []
    real = layer_utils.conv_backward

    def spy(dout, cache, **kwargs):
        asked.append(kwargs.get("need_dx", True))
        return real(dout, cache, **kwargs)

    monkeypatch.setattr(layer_utils, "conv_backward", spy)
    np.random.seed(0)
    model = ThreeLayerConvNet(input_dim=(3, 8, 8), num_filters=2, filter_size=3, hidden_dim=5)
    _, grads = model.loss(np.random.randn(2, 3, 8, 8), np.array([1, 2]))
    assert asked == [False], f"conv_backward was called with need_dx={asked}; the model needs no dX"
    assert set(grads) == set(model.params)


def test_reference_conv_backward_skips_dx():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal(4)
    conv_param = {"stride": 1, "pad": 1}
    for forward, backward in ((conv_forward_fast, conv_backward_fast), (conv_forward_naive, conv_backward_naive)):
        out, cache = forward(x, w, b, conv_param)
        dout = rng.standard_normal(out.shape)
        dx, dw, db = backward(dout, cache)
        skipped, dw2, db2 = backward(dout, cache, need_dx=False)
        assert skipped is None and dx is not None
        np.testing.assert_array_equal(dw2, dw)
        np.testing.assert_array_equal(db2, db)


def test_sandwiches_pass_need_dx_on():
    rng = np.random.default_rng(1)
    x, w, b = rng.standard_normal((2, 3, 6, 6)), rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    conv_param = {"stride": 1, "pad": 1}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    gamma, beta = np.ones(4), np.zeros(4)
    cases = [
        (layer_utils.conv_relu_forward(x, w, b, conv_param), layer_utils.conv_relu_backward),
        (layer_utils.conv_relu_pool_forward(x, w, b, conv_param, pool_param), layer_utils.conv_relu_pool_backward),
        (layer_utils.conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, {"mode": "train"}),
         layer_utils.conv_bn_relu_backward),
    ]
    for (out, cache), backward in cases:
        dout = rng.standard_normal(out.shape)
        full, skipped = backward(dout, cache), backward(dout, cache, need_dx=False)
        assert skipped[0] is None and full[0] is not None, backward.__name__
        for a, c in zip(full[1:], skipped[1:]):
            np.testing.assert_array_equal(a, c)
