"""Public checks for cs_layers/torch_nets.py (task3_1 to task3_5), torch.nn.functional as the key."""
import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as tF
from hypothesis import given
from hypothesis import strategies as st

from cs_layers import course
from cs_layers import torch_nets as tn
from cs_layers.gradient_check import rel_error

FC_HINT = "flatten x to (N, D), then x @ w1, ReLU, @ w2 (no biases)"
CONV_HINT = "conv 5x5 pad 2 + bias, ReLU, conv 3x3 pad 1 + bias, ReLU, flatten, @ fc_w + fc_b"


def _close(got, expected, tol, what, hint):
    got, expected = got.detach(), expected.detach()
    assert got.shape == expected.shape, f"{what}: shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}"
    err = rel_error(got.double().cpu().numpy(), expected.double().cpu().numpy())
    assert err <= tol, f"{what}: relative error {err:.1e} > {tol:.0e}. {hint}"


def _ref_conv(x, p):
    h = tF.relu(tF.conv2d(x, p[0], p[1], padding=2))
    h = tF.relu(tF.conv2d(h, p[2], p[3], padding=1))
    return h.reshape(len(x), -1) @ p[4] + p[5]


def _one_sgd_step_lowers_loss(model_or_fn, params, x, y, lr=1e-2):
    def loss_of():
        scores = model_or_fn(x, params) if callable(model_or_fn) and params is not None \
            and not isinstance(model_or_fn, nn.Module) else model_or_fn(x)
        return tF.cross_entropy(scores, y)
    loss0 = loss_of()
    loss0.backward()
    ps = params if params is not None else list(model_or_fn.parameters())
    with torch.no_grad():
        for p in ps:
            assert p.grad is not None, "a parameter got no gradient: is it used in the forward pass?"
            p -= lr * p.grad
    with torch.no_grad():
        loss1 = loss_of()
    assert loss1 < loss0, f"one SGD step on one batch should lower the loss: {loss0:.4f} -> {loss1:.4f}"


# ---------------------------------------------------------------- task3_1
@pytest.mark.task3_1
def test_two_layer_fc_hand_computed():
    x = torch.tensor([[[1.0, -2.0]], [[0.5, 1.0]]])  # (2, 1, 2) flattens to (2, 2)
    w1 = torch.tensor([[1.0, -1.0, 2.0], [0.0, 1.0, 1.0]])
    w2 = torch.tensor([[1.0], [2.0], [-1.0]])
    # hidden = relu([[1, -3, 0], [0.5, 0.5, 2]]) = [[1, 0, 0], [0.5, 0.5, 2]]
    scores = tn.two_layer_fc(x, [w1, w2])
    _close(scores, torch.tensor([[1.0], [0.5 + 1.0 - 2.0]]), 1e-6, "two_layer_fc scores", FC_HINT)


@pytest.mark.task3_1
@given(n=st.integers(1, 5), dims=st.lists(st.integers(1, 4), min_size=1, max_size=3),
       h=st.integers(1, 6), c=st.integers(1, 5), seed=st.integers(0, 2**31 - 1))
def test_two_layer_fc_matches_torch(n, dims, h, c, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn((n, *dims), generator=g, dtype=torch.float64)
    d = int(np.prod(dims))
    w1, w2 = (torch.randn(s, generator=g, dtype=torch.float64) for s in ((d, h), (h, c)))
    _close(tn.two_layer_fc(x, [w1, w2]), tF.relu(x.reshape(n, -1) @ w1) @ w2, 1e-12,
           "two_layer_fc vs torch", FC_HINT)


@pytest.mark.task3_1
def test_two_layer_fc_gradients_and_sgd_step():
    g = torch.Generator().manual_seed(1)
    x = torch.randn((7, 3, 2, 2), generator=g, dtype=torch.float64)
    w1 = torch.randn((12, 5), generator=g, dtype=torch.float64, requires_grad=True)
    w2 = torch.randn((5, 4), generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: tn.two_layer_fc(x, [a, b]), (w1, w2)), \
        "gradients through two_layer_fc disagree with central differences; use torch ops only"
    _one_sgd_step_lowers_loss(tn.two_layer_fc, [w1, w2], x, torch.tensor([0, 1, 2, 3, 0, 1, 2]))


@pytest.mark.task3_1
@pytest.mark.parametrize("shape,fan_in", [((400, 300), 400), ((64, 8, 5, 5), 200)])
def test_random_weight_kaiming_statistics(shape, fan_in):
    w = tn.random_weight(shape, generator=torch.Generator().manual_seed(0))
    assert w.requires_grad and w.is_leaf, "random_weight must return a leaf tensor with requires_grad=True"
    w = w.detach()
    assert tuple(w.shape) == shape and w.dtype == torch.float32, f"shape {tuple(w.shape)} dtype {w.dtype}"
    std = math.sqrt(2.0 / fan_in)
    assert abs(float(w.std()) / std - 1) < 0.05, \
        f"std {float(w.std()):.4f}, expected sqrt(2 / fan_in) = {std:.4f} with fan_in = {fan_in}"
    assert abs(float(w.mean())) < 5 * std / math.sqrt(w.numel()), "Kaiming-normal weights have mean 0"


@pytest.mark.task3_1
def test_random_weight_dtype_and_bad_shape():
    assert tn.random_weight((3, 2), dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="shape"):
        tn.random_weight((3, 2, 2))


# ---------------------------------------------------------------- task3_2
@pytest.mark.task3_2
def test_three_layer_convnet_hand_computed():
    # 1x1 image, 1 channel: each conv only sees its centre tap.
    x = torch.tensor([[[[2.0]]]])
    w1 = torch.zeros((1, 1, 5, 5))
    w1[0, 0, 2, 2] = 3.0
    w2 = torch.zeros((1, 1, 3, 3))
    w2[0, 0, 1, 1] = -1.0
    params = [w1, torch.tensor([1.0]), w2, torch.tensor([10.0]), torch.tensor([[2.0, -1.0]]),
              torch.tensor([0.5, 0.0])]
    # relu(3*2 + 1) = 7; relu(-7 + 10) = 3; fc: [6.5, -3]
    _close(tn.three_layer_convnet(x, params), torch.tensor([[6.5, -3.0]]), 1e-6,
           "three_layer_convnet scores", CONV_HINT)


@pytest.mark.task3_2
@given(n=st.integers(1, 3), c=st.integers(1, 3), hw=st.tuples(st.integers(1, 7), st.integers(1, 7)),
       c1=st.integers(1, 4), c2=st.integers(1, 4), k=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_three_layer_convnet_matches_torch(n, c, hw, c1, c2, k, seed):
    H, W = hw
    g = torch.Generator().manual_seed(seed)
    shapes = [(c1, c, 5, 5), (c1,), (c2, c1, 3, 3), (c2,), (c2 * H * W, k), (k,)]
    p = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    x = torch.randn((n, c, H, W), generator=g, dtype=torch.float64)
    _close(tn.three_layer_convnet(x, p), _ref_conv(x, p), 1e-12, "three_layer_convnet vs torch", CONV_HINT)


@pytest.mark.task3_2
def test_three_layer_convnet_params_and_training_step():
    torch.manual_seed(0)
    p = tn.three_layer_convnet_params(3, 6, 5, 4, height=7, width=5, dtype=torch.float64)
    assert [tuple(t.shape) for t in p] == [(6, 3, 5, 5), (6,), (5, 6, 3, 3), (5,), (175, 4), (4,)]
    assert all(t.requires_grad and t.is_leaf for t in p), "every parameter needs requires_grad=True"
    d = [t.detach() for t in p]
    assert all(float(b.abs().max()) == 0 for b in d[1::2]), "biases start at zero (zero_weight)"
    for w, fan_in in zip(d[0::2], (75, 54, 175)):
        assert 0.7 < float(w.std()) / math.sqrt(2 / fan_in) < 1.3, "weights come from random_weight"
    x = torch.randn((5, 3, 7, 5), dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *q: tn.three_layer_convnet(x[:2], list(q)), tuple(p))
    _one_sgd_step_lowers_loss(tn.three_layer_convnet, p, x, torch.tensor([0, 1, 2, 3, 0]))


@pytest.mark.task3_2
def test_three_layer_convnet_zero_input_and_bad_params():
    p = [torch.zeros(s) for s in [(2, 3, 5, 5), (2,), (4, 2, 3, 3), (4,), (64, 5), (5,)]]
    p[5] += torch.arange(5.0)
    _close(tn.three_layer_convnet(torch.zeros((1, 3, 4, 4)), p), torch.arange(5.0)[None], 1e-6,
           "scores of zero weights", "the fc bias is added to every score")
    with pytest.raises(ValueError, match="params"):
        tn.three_layer_convnet(torch.zeros((1, 3, 4, 4)), [torch.zeros((2, 3, 5, 5))] * 6)


# ---------------------------------------------------------------- task3_3
def _load_fixed(model, seed):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * 0.3)
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.task3_3
def test_module_parameter_shapes_and_init():
    torch.manual_seed(0)
    fc = tn.TwoLayerFC(600, 300, 10)
    assert [tuple(p.shape) for p in fc.parameters()] == [(300, 600), (300,), (10, 300), (10,)], \
        "register fc1 = nn.Linear(D, H) then fc2 = nn.Linear(H, C) in __init__"
    conv = tn.ThreeLayerConvNet(3, 12, 8, 10)
    assert sum(p.numel() for p in conv.parameters()) == 12 * 75 + 12 + 8 * 108 + 8 + 8 * 1024 * 10 + 10
    for model in (fc, conv):
        ws = [p.detach() for n, p in model.named_parameters() if n.endswith("weight")]
        bs = [p.detach() for n, p in model.named_parameters() if n.endswith("bias")]
        assert all(float(b.abs().max()) == 0 for b in bs), "biases start at zero (nn.init.zeros_)"
        for w in ws:
            fan_in = int(np.prod(w.shape[1:]))
            ratio = float(w.std()) / math.sqrt(2 / fan_in)
            assert 0.8 < ratio < 1.2, f"weight {tuple(w.shape)}: std / sqrt(2/fan_in) = {ratio:.2f}; " \
                "use nn.init.kaiming_normal_"


@pytest.mark.task3_3
@pytest.mark.parametrize("n", [1, 3, 7])
def test_module_forward_matches_barebones_reference(n):
    fc = tn.TwoLayerFC(2 * 3 * 5, 6, 4).double()
    w1, b1, w2, b2 = _load_fixed(fc, n)
    x = torch.randn((n, 2, 3, 5), dtype=torch.float64)
    _close(fc(x), tF.relu(x.reshape(n, -1) @ w1.T + b1) @ w2.T + b2, 1e-12, "TwoLayerFC vs torch", FC_HINT)
    conv = tn.ThreeLayerConvNet(2, 3, 4, 5, height=3, width=5).double()
    p = _load_fixed(conv, n)
    ref = _ref_conv(x, [p[0], p[1], p[2], p[3], p[4].T, p[5]])
    _close(conv(x), ref, 1e-12, "ThreeLayerConvNet vs torch", CONV_HINT)
    _one_sgd_step_lowers_loss(conv, None, x, torch.arange(n) % 5)


# ---------------------------------------------------------------- task3_4
@pytest.mark.task3_4
def test_sequential_structure_and_forward():
    fc = tn.sequential_fc(12, 7, 3)
    conv = tn.sequential_convnet(2, 4, 3, 5, height=6, width=2)
    assert isinstance(fc, nn.Sequential) and isinstance(conv, nn.Sequential), "return an nn.Sequential"
    assert [tuple(p.shape) for p in fc.parameters()] == [(7, 12), (7,), (3, 7), (3,)]
    assert [tuple(p.shape) for p in conv.parameters()] == [(4, 2, 5, 5), (4,), (3, 4, 3, 3), (3,),
                                                          (5, 36), (5,)]
    fc, conv = fc.double(), conv.double()
    x = torch.randn((5, 2, 6, 2), dtype=torch.float64)
    w1, b1, w2, b2 = _load_fixed(fc, 0)
    _close(fc(x[:, :, :3]), tF.relu(x[:, :, :3].reshape(5, -1) @ w1.T + b1) @ w2.T + b2, 1e-12,
           "sequential_fc vs torch", "Flatten, Linear, ReLU, Linear")
    p = _load_fixed(conv, 1)
    _close(conv(x), _ref_conv(x, [p[0], p[1], p[2], p[3], p[4].T, p[5]]), 1e-12,
           "sequential_convnet vs torch", "Conv 5x5 pad 2, ReLU, Conv 3x3 pad 1, ReLU, Flatten, Linear")


@pytest.mark.task3_4
def test_sequential_trains_with_nesterov():
    torch.manual_seed(0)
    model = tn.sequential_convnet(3, 4, 4, 3, height=5, width=5)
    x, y = torch.randn((9, 3, 5, 5)), torch.arange(9) % 3
    opt = torch.optim.SGD(model.parameters(), lr=1e-2, momentum=0.9, nesterov=True)
    loss0 = tF.cross_entropy(model(x), y)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    loss1 = tF.cross_entropy(model(x), y)
    assert loss1 < loss0, f"one Nesterov SGD step should lower the loss: {loss0:.4f} -> {loss1:.4f}"


# ---------------------------------------------------------------- task3_5
@pytest.mark.task3_5
@pytest.mark.parametrize("dataset", tn.DATASETS)
def test_challenge_model_shape_and_size(dataset):
    model = tn.challenge_model(dataset)
    assert isinstance(model, nn.Module), "challenge_model must return an nn.Module"
    n = sum(p.numel() for p in model.parameters())
    assert n <= course.MAX_CHALLENGE_PARAMS, f"{n} parameters; the grader allows {course.MAX_CHALLENGE_PARAMS}"
    with torch.inference_mode():
        scores = model.eval()(torch.zeros((3, 3, 32, 32)))
    assert tuple(scores.shape) == (3, 10), f"scores {tuple(scores.shape)}, expected (3, 10)"


@pytest.mark.task3_5
def test_challenge_save_and_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = tn.challenge_model("digits")
    x = torch.randn((4, 3, 32, 32))
    model.train()(x)  # moves the batchnorm running statistics away from their defaults
    path = tmp_path / tn.CHALLENGE_FILE
    tn.save_challenge(model, "digits", path)
    loaded, dataset = tn.load_challenge(path)
    assert dataset == "digits" and not loaded.training
    with torch.inference_mode():
        _close(loaded(x), model.eval()(x), 1e-6, "reloaded challenge model", "save the whole state_dict")


@pytest.mark.given
def test_challenge_file_refuses_other_content(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="save_challenge"):
        tn.load_challenge(tmp_path / "x.pt")
    with pytest.raises(ValueError, match="dataset"):
        tn.save_challenge(nn.Linear(1, 1), "mnist", tmp_path / "y.pt")
