"""PyTorch nets for the finale (task3_1 to task3_5), written three ways.

- task3_1, task3_2 (barebones): parameters are plain tensors with
  requires_grad=True, the forward pass is a function of (x, params).
- task3_3 (nn.Module): the same nets as classes; layers registered in __init__.
- task3_4 (nn.Sequential): the same nets as layer lists.
- task3_5 (challenge): any model, built by challenge_model(dataset); its trained
  weights are saved with save_challenge to assignments/convnets/challenge_model.pt.

Conventions: images are (N, C, H, W) float tensors, scores (N, num_classes).
Every function works on whatever device and float dtype its inputs have; none
assumes CUDA. The grader calls these functions in a sandbox on fresh inputs and
compares with torch references; the notebook PyTorch.ipynb trains them.

The challenge file is a dict {"dataset": "patterns" | "digits" | "cifar10", "state_dict": ...}
written by torch.save and read back with torch.load(..., weights_only=True):
only tensors and plain values, never pickled code.
"""
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cs_layers import course

DATASETS = ("patterns", "digits", "cifar10")  # the names get_data gives its datasets
CHALLENGE_FILE = course.CHALLENGE_FILE  # saved in assignments/convnets/, next to convnet_model.npz


# ---------------------------------------------------------------- given helpers
def flatten(x):
    """(N, d_1, ..., d_k) -> (N, d_1 * ... * d_k), a view when possible."""
    return x.reshape(x.shape[0], -1)


def zero_weight(shape, *, device=None, dtype=torch.float32):
    """A zero tensor of `shape` with requires_grad=True (biases of the barebones nets)."""
    return torch.zeros(tuple(int(s) for s in shape), device=device, dtype=dtype, requires_grad=True)


def image_tensors(X, pixel_std):
    """Images as the nets see them: float32 (N, C, H, W) divided by the training pixel std.

    Inputs:
    - X: (N, C, H, W) images from cs_layers.data.get_data (mean image already subtracted)
    - pixel_std: float(data["X_train"].std()), computed once on the training split

    The notebook's loaders and the grader's held-out images both go through this.
    """
    return torch.from_numpy(np.ascontiguousarray(np.asarray(X) / pixel_std, dtype=np.float32))


def _check_params(params, shapes, fn):
    """params must be a list/tuple of tensors of the given shapes; say which one is wrong."""
    if len(params) != len(shapes):
        raise ValueError(f"{fn}: expected {len(shapes)} parameter tensors, got {len(params)}")
    for i, (p, s) in enumerate(zip(params, shapes)):
        if s is not None and tuple(p.shape) != s:
            raise ValueError(f"{fn}: params[{i}] has shape {tuple(p.shape)}, expected {s}")


# ---------------------------------------------------------------- task3_1: barebones FC net
def random_weight(shape, *, device=None, dtype=torch.float32, generator=None):
    """Kaiming-normal initialisation for a ReLU net: N(0, 2 / fan_in).

    Inputs:
    - shape: (D, M) for a fully connected weight (fan_in = D), or (F, C, HH, WW)
      for a conv filter bank (fan_in = C * HH * WW)
    - device, dtype: where and how the tensor is made
    - generator: an optional torch.Generator, for reproducible draws

    Returns a leaf tensor of `shape` with requires_grad=True.
    """
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 4) or min(shape) < 1:
        raise ValueError(f"random_weight: shape must be (D, M) or (F, C, HH, WW), got {shape}")
    # task3_1: random_weight
    ### BEGIN SOLUTION
    fan_in = shape[0] if len(shape) == 2 else shape[1] * shape[2] * shape[3]
    w = torch.randn(shape, device=device, dtype=dtype, generator=generator) * math.sqrt(2.0 / fan_in)
    ### END SOLUTION
    return w.requires_grad_()


def two_layer_fc(x, params):
    """Two-layer fully connected net, no biases: flatten - affine - ReLU - affine.

    Inputs:
    - x: (N, d_1, ..., d_k), flattened to (N, D)
    - params: [w1 (D, H), w2 (H, C)]

    Returns scores: (N, C) = relu(flatten(x) @ w1) @ w2
    """
    _check_params(params, [None, None], "two_layer_fc")
    w1, w2 = params
    D = int(np.prod(x.shape[1:]))
    _check_params(params, [(D, w1.shape[-1]), (w1.shape[-1], w2.shape[-1])], "two_layer_fc")
    # task3_1: two_layer_fc
    ### BEGIN SOLUTION
    scores = F.relu(flatten(x).mm(w1)).mm(w2)  # (N, C)
    ### END SOLUTION
    return scores


# ---------------------------------------------------------------- task3_2: barebones ConvNet
def three_layer_convnet(x, params):
    """conv 5x5 (pad 2) - ReLU - conv 3x3 (pad 1) - ReLU - fully connected, with biases.

    Inputs:
    - x: (N, C, H, W)
    - params: [conv_w1 (C1, C, 5, 5), conv_b1 (C1,), conv_w2 (C2, C1, 3, 3),
      conv_b2 (C2,), fc_w (C2 * H * W, K), fc_b (K,)]

    Returns scores: (N, K). Both convolutions keep H x W (stride 1, "same" padding).
    """
    if x.dim() != 4:
        raise ValueError(f"three_layer_convnet: x must be (N, C, H, W), got shape {tuple(x.shape)}")
    N, C, H, W = x.shape
    _check_params(params, [None] * 6, "three_layer_convnet")
    conv_w1, conv_b1, conv_w2, conv_b2, fc_w, fc_b = params
    C1, C2, K = conv_w1.shape[0], conv_w2.shape[0], fc_w.shape[-1]
    _check_params(params, [(C1, C, 5, 5), (C1,), (C2, C1, 3, 3), (C2,), (C2 * H * W, K), (K,)],
                  "three_layer_convnet")
    # task3_2: three_layer_convnet
    ### BEGIN SOLUTION
    x = F.relu(F.conv2d(x, conv_w1, conv_b1, padding=2))  # (N, C1, H, W)
    x = F.relu(F.conv2d(x, conv_w2, conv_b2, padding=1))  # (N, C2, H, W)
    scores = flatten(x).mm(fc_w) + fc_b  # (N, K)
    ### END SOLUTION
    return scores


def three_layer_convnet_params(in_channel, channel_1, channel_2, num_classes, height=32, width=32,
                               *, device=None, dtype=torch.float32, generator=None):
    """Initial parameters for three_layer_convnet, in its order.

    Weights with random_weight (Kaiming normal), biases with zero_weight.

    Returns [conv_w1 (C1, C, 5, 5), conv_b1 (C1,), conv_w2 (C2, C1, 3, 3), conv_b2 (C2,),
    fc_w (C2 * height * width, K), fc_b (K,)], every tensor with requires_grad=True.
    """
    dims = (in_channel, channel_1, channel_2, num_classes, height, width)
    if any(int(d) < 1 for d in dims):
        raise ValueError(f"three_layer_convnet_params: every size must be >= 1, got {dims}")
    kw = {"device": device, "dtype": dtype}
    # task3_2: three_layer_convnet_params
    ### BEGIN SOLUTION
    params = [
        random_weight((channel_1, in_channel, 5, 5), generator=generator, **kw),
        zero_weight((channel_1,), **kw),
        random_weight((channel_2, channel_1, 3, 3), generator=generator, **kw),
        zero_weight((channel_2,), **kw),
        random_weight((channel_2 * height * width, num_classes), generator=generator, **kw),
        zero_weight((num_classes,), **kw),
    ]
    ### END SOLUTION
    return params


# ---------------------------------------------------------------- task3_3: nn.Module
class TwoLayerFC(nn.Module):
    """flatten - nn.Linear (fc1) - ReLU - nn.Linear (fc2).

    Weights Kaiming normal (nn.init.kaiming_normal_), biases zero. Registered
    parameters, in order: fc1.weight (H, D), fc1.bias (H,), fc2.weight (C, H), fc2.bias (C,).
    forward: (N, d_1, ..., d_k) -> scores (N, C).
    """

    def __init__(self, input_size, hidden_size, num_classes):
        super().__init__()
        # task3_3: TwoLayerFC.__init__
        ### BEGIN SOLUTION
        self.fc1 = nn.Linear(input_size, hidden_size)
        self.fc2 = nn.Linear(hidden_size, num_classes)
        for layer in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        ### END SOLUTION

    def forward(self, x):
        # task3_3: TwoLayerFC.forward
        ### BEGIN SOLUTION
        scores = self.fc2(F.relu(self.fc1(flatten(x))))  # (N, C)
        ### END SOLUTION
        return scores


class ThreeLayerConvNet(nn.Module):
    """The barebones ConvNet as a class: conv1 5x5 pad 2, ReLU, conv2 3x3 pad 1, ReLU, fc.

    Weights Kaiming normal, biases zero. Registered parameters, in order:
    conv1.weight (C1, C, 5, 5), conv1.bias, conv2.weight (C2, C1, 3, 3), conv2.bias,
    fc.weight (K, C2 * height * width), fc.bias (K,).
    forward: (N, C, height, width) -> scores (N, K).
    """

    def __init__(self, in_channel, channel_1, channel_2, num_classes, height=32, width=32):
        super().__init__()
        # task3_3: ThreeLayerConvNet.__init__
        ### BEGIN SOLUTION
        self.conv1 = nn.Conv2d(in_channel, channel_1, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(channel_1, channel_2, kernel_size=3, padding=1)
        self.fc = nn.Linear(channel_2 * height * width, num_classes)
        for layer in (self.conv1, self.conv2, self.fc):
            nn.init.kaiming_normal_(layer.weight)
            nn.init.zeros_(layer.bias)
        ### END SOLUTION

    def forward(self, x):
        # task3_3: ThreeLayerConvNet.forward
        ### BEGIN SOLUTION
        x = F.relu(self.conv1(x))  # (N, C1, H, W)
        x = F.relu(self.conv2(x))  # (N, C2, H, W)
        scores = self.fc(flatten(x))  # (N, K)
        ### END SOLUTION
        return scores


# ---------------------------------------------------------------- task3_4: nn.Sequential
def sequential_fc(input_size, hidden_size, num_classes):
    """nn.Sequential(Flatten, Linear(D, H), ReLU, Linear(H, C)), PyTorch's default init.

    Returns the nn.Sequential; its parameters, in order: (H, D), (H,), (C, H), (C,).
    """
    # task3_4: sequential_fc
    ### BEGIN SOLUTION
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(input_size, hidden_size),
        nn.ReLU(),
        nn.Linear(hidden_size, num_classes),
    )
    ### END SOLUTION
    return model


def sequential_convnet(in_channel, channel_1, channel_2, num_classes, height=32, width=32):
    """The three-layer ConvNet as nn.Sequential, PyTorch's default init.

    Conv2d 5x5 pad 2, ReLU, Conv2d 3x3 pad 1, ReLU, Flatten, Linear. Parameters,
    in order: (C1, C, 5, 5), (C1,), (C2, C1, 3, 3), (C2,), (K, C2 * height * width), (K,).
    """
    # task3_4: sequential_convnet
    ### BEGIN SOLUTION
    model = nn.Sequential(
        nn.Conv2d(in_channel, channel_1, kernel_size=5, padding=2),
        nn.ReLU(),
        nn.Conv2d(channel_1, channel_2, kernel_size=3, padding=1),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(channel_2 * height * width, num_classes),
    )
    ### END SOLUTION
    return model


# ---------------------------------------------------------------- task3_5: the challenge
def challenge_model(dataset="patterns"):
    """Your challenge model for 3x32x32 images and 10 classes, untrained.

    Inputs:
    - dataset: "patterns", "digits" or "cifar10", so that each dataset can get its own size of net

    Returns an nn.Module mapping (N, 3, 32, 32) float32 images (as image_tensors
    makes them) to (N, 10) scores, with at most course.MAX_CHALLENGE_PARAMS parameters.
    The grader builds it with this function, loads your saved weights into it,
    and runs it in eval mode on held-out test images.
    """
    if dataset not in DATASETS:
        raise ValueError(f"challenge_model: dataset must be one of {DATASETS}, got {dataset!r}")
    # task3_5: challenge_model
    ### BEGIN SOLUTION
    def conv_block(c_in, c_out):
        return nn.Sequential(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                             nn.BatchNorm2d(c_out), nn.ReLU())

    def stage(c_in, c_out, deep):  # one or two conv blocks, then a 2x2 max pool
        blocks = [conv_block(c_in, c_out)] + ([conv_block(c_out, c_out)] if deep else [])
        return nn.Sequential(*blocks, nn.MaxPool2d(2))

    deep = dataset == "cifar10"  # CIFAR-10 (on a GPU) gets a wider, deeper net
    width = 64 if deep else 16
    model = nn.Sequential(
        stage(3, width, deep),  # (N, w, 16, 16)
        stage(width, 2 * width, deep),  # (N, 2w, 8, 8)
        stage(2 * width, 4 * width, deep),  # (N, 4w, 4, 4)
        nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * width * 4 * 4, 10),
    )
    ### END SOLUTION
    return model


def save_challenge(model, dataset, path):
    """Save the trained challenge weights (tensors only) with the dataset they were trained on."""
    if dataset not in DATASETS:
        raise ValueError(f"save_challenge: dataset must be one of {DATASETS}, got {dataset!r}")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save({"dataset": dataset, "state_dict": state}, Path(path))


def load_challenge(path, *, map_location="cpu"):
    """(model, dataset): rebuild with challenge_model and load the weights saved by save_challenge.

    Reads with torch.load(weights_only=True): tensors and plain values only.
    Raises ValueError with what to do when the file is not a challenge file.
    """
    path = Path(path)
    if path.stat().st_size > course.MAX_MODEL_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size >> 20} MiB; the limit is "
                         f"{course.MAX_MODEL_BYTES >> 20} MiB: use a smaller challenge model")
    saved = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(saved, dict) or saved.get("dataset") not in DATASETS \
            or not isinstance(saved.get("state_dict"), dict):
        raise ValueError(f"{path} is not a challenge file; write it with "
                         "torch_nets.save_challenge(model, dataset, path)")
    model = challenge_model(saved["dataset"])
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > course.MAX_CHALLENGE_PARAMS:
        raise ValueError(f"challenge_model({saved['dataset']!r}) has {n_params} parameters; "
                         f"the limit is {course.MAX_CHALLENGE_PARAMS}")
    model.load_state_dict(saved["state_dict"], strict=True)
    return model.eval(), saved["dataset"]
