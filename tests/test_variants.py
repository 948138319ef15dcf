"""The comparison nets of the ConvolutionalNetworks notebook (cs_layers/variants.py): shapes,
parameter counts and a central-difference gradient check of every parameter, on the reference layers."""
import numpy as np
import pytest

from cs_layers.cnn import ThreeLayerConvNet
from cs_layers.gradient_check import eval_numerical_gradient, rel_error
from cs_layers.variants import FullyConnectedNet, GapConvNet, StridedConvNet, num_params


def test_parameter_counts():
    conv = ThreeLayerConvNet()
    assert num_params(conv) == 825_046
    assert num_params(FullyConnectedNet(hidden_dim=268)) == 3072 * 268 + 268 + 268 * 10 + 10 >= 825_046
    assert num_params(StridedConvNet()) == 32 * 3 * 8 * 8 + 32 + 8192 * 100 + 100 + 1010
    assert num_params(GapConvNet()) == 4736 + 32 * 10 + 10


@pytest.mark.parametrize("make", [
    lambda: FullyConnectedNet(input_dim=(3, 8, 8), hidden_dim=7, weight_scale=0.1, reg=0.3, dtype=np.float64),
    lambda: StridedConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=4, hidden_dim=5, weight_scale=0.1,
                           reg=0.3, dtype=np.float64),
    lambda: GapConvNet(input_dim=(3, 8, 8), num_filters=3, filter_size=3, weight_scale=0.1, reg=0.3,
                       dtype=np.float64),
], ids=["fc", "strided", "gap"])
def test_gradients(make):
    np.random.seed(0)
    model = make()
    X, y = np.random.randn(2, 3, 8, 8), np.array([1, 7])
    assert model.loss(X).shape == (2, 10)
    loss, grads = model.loss(X, y)
    assert set(grads) == set(model.params)
    for name in model.params:
        num = eval_numerical_gradient(lambda _: model.loss(X, y)[0], model.params[name], verbose=False, h=1e-6)
        assert rel_error(num, grads[name]) < 1e-5, (name, rel_error(num, grads[name]))
