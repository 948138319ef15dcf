"""Networks to compare the ThreeLayerConvNet with (given code, built from your layers).

- FullyConnectedNet: affine - relu - affine - softmax on the flattened image, the
  baseline a ConvNet must beat.
- StridedConvNet: the ThreeLayerConvNet with one stride-2 convolution in place of the
  stride-1 convolution and the 2x2 max pool (same output size; 8x8 filters, see below).
- GapConvNet: the ThreeLayerConvNet's conv - relu - pool, then a 1x1 convolution to
  one map per class and global average pooling in place of the flatten + two affine layers.

Each has `params`, `reg` and `loss(X, y=None)` like ThreeLayerConvNet, so the Solver
trains it. `num_params(model)` counts the parameters from the arrays themselves.
"""
import numpy as np

from cs_layers.layer_utils import (affine_relu_backward, affine_relu_forward, conv_backward, conv_forward,
                                   conv_relu_backward, conv_relu_forward, conv_relu_pool_backward,
                                   conv_relu_pool_forward)
from cs_layers.layers import affine_backward, affine_forward, softmax_loss

POOL_PARAM = {"pool_height": 2, "pool_width": 2, "stride": 2}


def num_params(model):
    """The number of learnable numbers in model.params."""
    return int(sum(p.size for p in model.params.values()))


class _Net:
    """Shared initialisation and the regularised loss."""

    def _init(self, shapes, weight_scale, reg, dtype):
        self.params, self.reg, self.dtype = {}, reg, dtype
        for name, shape in shapes.items():
            draw = weight_scale * np.random.randn(*shape) if name.startswith("W") else np.zeros(shape)
            self.params[name] = draw.astype(dtype)

    def _finish(self, scores, y, backward):
        """Scores when y is None, else (loss, grads) with L2 on every weight."""
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = backward(dscores)
        for name, W in self.params.items():
            if name.startswith("W"):
                loss += 0.5 * self.reg * float(np.sum(W * W))
                grads[name] = grads[name] + self.reg * W
        return loss, grads


class FullyConnectedNet(_Net):
    """affine - relu - affine - softmax on images flattened to (N, C*H*W).

    W1: (C*H*W, hidden_dim), b1; W2: (hidden_dim, num_classes), b2.
    """

    def __init__(self, input_dim=(3, 32, 32), hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, dtype=np.float32):
        D = int(np.prod(input_dim))
        self._init({"W1": (D, hidden_dim), "b1": (hidden_dim,), "W2": (hidden_dim, num_classes),
                    "b2": (num_classes,)}, weight_scale, reg, dtype)

    def loss(self, X, y=None):
        p = self.params
        h, cache1 = affine_relu_forward(np.asarray(X, self.dtype), p["W1"], p["b1"])  # (N, hidden_dim)
        scores, cache2 = affine_forward(h, p["W2"], p["b2"])  # (N, num_classes)

        def backward(dscores):
            grads = {}
            dh, grads["W2"], grads["b2"] = affine_backward(dscores, cache2)
            _, grads["W1"], grads["b1"] = affine_relu_backward(dh, cache1)
            return grads
        return self._finish(scores, y, backward)


class StridedConvNet(_Net):
    """conv (stride 2) - relu - affine - relu - affine - softmax.

    The stride-2 convolution halves H and W as the 2x2 max pool does, so the
    affine layers have the ThreeLayerConvNet's shapes. Its default 8x8 filters
    (pad 3) see the same 8x8 pixels as one unit after a 7x7 conv and a 2x2 pool;
    a 7x7 filter with stride 2 cannot tile 32 pixels (32 + 2*pad - 7 is odd for
    every pad). It computes a quarter of the convolution outputs, and learns the
    downsampling instead of taking the largest of four.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=8, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=np.float32):
        C, H, W = input_dim
        self.pad = (filter_size - 1) // 2
        H_out, W_out = 1 + (H + 2 * self.pad - filter_size) // 2, 1 + (W + 2 * self.pad - filter_size) // 2
        self._init({"W1": (num_filters, C, filter_size, filter_size), "b1": (num_filters,),
                    "W2": (num_filters * H_out * W_out, hidden_dim), "b2": (hidden_dim,),
                    "W3": (hidden_dim, num_classes), "b3": (num_classes,)}, weight_scale, reg, dtype)

    def loss(self, X, y=None):
        p = self.params
        conv_param = {"stride": 2, "pad": self.pad}
        h1, cache1 = conv_relu_forward(np.asarray(X, self.dtype), p["W1"], p["b1"], conv_param)  # (N, F, H/2, W/2)
        h2, cache2 = affine_relu_forward(h1, p["W2"], p["b2"])  # (N, hidden_dim)
        scores, cache3 = affine_forward(h2, p["W3"], p["b3"])  # (N, num_classes)

        def backward(dscores):
            grads = {}
            dh2, grads["W3"], grads["b3"] = affine_backward(dscores, cache3)
            dh1, grads["W2"], grads["b2"] = affine_relu_backward(dh2, cache2)
            _, grads["W1"], grads["b1"] = conv_relu_backward(dh1, cache1, need_dx=False)
            return grads
        return self._finish(scores, y, backward)


class GapConvNet(_Net):
    """conv - relu - 2x2 max pool - 1x1 conv - global average pool - softmax.

    The 1x1 convolution (W2: (num_classes, num_filters, 1, 1)) turns every pooled
    position's num_filters features into num_classes scores; averaging those maps
    over all positions gives the class scores, wherever in the image the evidence is.
    """

    def __init__(self, input_dim=(3, 32, 32), num_filters=32, filter_size=7, num_classes=10,
                 weight_scale=1e-3, reg=0.0, dtype=np.float32):
        C = input_dim[0]
        self.pad = (filter_size - 1) // 2
        self._init({"W1": (num_filters, C, filter_size, filter_size), "b1": (num_filters,),
                    "W2": (num_classes, num_filters, 1, 1), "b2": (num_classes,)}, weight_scale, reg, dtype)

    def loss(self, X, y=None):
        p = self.params
        conv_param = {"stride": 1, "pad": self.pad}
        h1, cache1 = conv_relu_pool_forward(np.asarray(X, self.dtype), p["W1"], p["b1"], conv_param,
                                            dict(POOL_PARAM))  # (N, F, H/2, W/2)
        maps, cache2 = conv_forward(h1, p["W2"], p["b2"], {"stride": 1, "pad": 0})  # (N, classes, H/2, W/2)
        scores = maps.mean(axis=(2, 3))  # (N, num_classes)

        def backward(dscores):
            grads = {}
            dmaps = np.broadcast_to(dscores[:, :, None, None] / (maps.shape[2] * maps.shape[3]), maps.shape)
            dh1, grads["W2"], grads["b2"] = conv_backward(np.ascontiguousarray(dmaps), cache2)
            _, grads["W1"], grads["b1"] = conv_relu_pool_backward(dh1, cache1, need_dx=False)
            return grads
        return self._finish(scores, y, backward)
