"""Runs INSIDE the sandbox next to worker.py: the PyTorch probes of task3_1 to task3_5.

A probe is one hidden test as a plain function, like those of probes.py:
``worker.run_case`` calls ``PROBES[name](student_torch_nets, **named)`` with the
case's named arrays and JSON parameters. Every probe does one job with torch
(forward, autograd, one SGD step, an initialisation, the challenge logits) and
returns a dict of numpy arrays. The grader runs the same probes on the
instructor's torch_nets to get the expected outputs, so the probes are the only
torch code both sides share.

Loaded by the worker before any student code runs: torch is imported once per
worker process, with CUDA hidden, so no result depends on the grader's device.
"""
import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: the same CPU arithmetic on every grader

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
DATASET_CODES = {"digits": 0, "cifar10": 1, "patterns": 2}
CHALLENGE_BATCH = 250
PROBES = {}  # name -> probe function (with .module: the cs_layers module it tests)


def probe(fn):
    """Register a probe of the student's torch_nets, under the function's name."""
    fn.module = "torch_nets"
    PROBES[fn.__name__] = fn
    return fn


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _np(t):
    return t.detach().cpu().numpy().copy()


def _barebones(net, x, params, dscores):
    """Forward and backward of a barebones net: scores, dx and one gradient per parameter."""
    xt = _t(x, grad=True)
    pt = [_t(p, grad=True) for p in params]
    scores = net(xt, pt)
    scores.backward(_t(dscores))
    out = {"scores": _np(scores), "dx": _np(xt.grad)}
    out.update({f"d{i}": _np(p.grad) for i, p in enumerate(pt)})
    return out


@probe
def two_layer_fc(torch_nets, *, x, w1, w2, dout):
    return _barebones(torch_nets.two_layer_fc, x, [w1, w2], dout)


@probe
def three_layer_convnet(torch_nets, *, x, w1, b1, w2, b2, fc_w, fc_b, dout):
    return _barebones(torch_nets.three_layer_convnet, x, [w1, b1, w2, b2, fc_w, fc_b], dout)


def _init_tensors(make):
    """The tensors an initialiser returns (one tensor or a list), and whether each is a leaf with grad."""
    torch.manual_seed(0)
    made = make()
    tensors = made if isinstance(made, (list, tuple)) else [made]
    out = {f"t{i}": _np(t) for i, t in enumerate(tensors)}
    out["leaf_grad"] = np.array([float(t.is_leaf and t.requires_grad) for t in tensors])
    out["count"] = np.array([float(len(tensors))])
    return out


@probe
def random_weight(torch_nets, *, shape):
    return _init_tensors(lambda: torch_nets.random_weight(shape))


@probe
def three_layer_convnet_params(torch_nets, *, dims):
    return _init_tensors(lambda: torch_nets.three_layer_convnet_params(*dims))


def _model(module, builder, kwargs):
    model = getattr(module, builder)(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{builder} returned a {type(model).__name__}, not an nn.Module")
    return model


@probe
def model_init(torch_nets, *, builder, kwargs):
    """A freshly built model's parameters (and their shapes), in registration order, and its class facts."""
    torch.manual_seed(0)
    model = _model(torch_nets, builder, kwargs)
    params = list(model.parameters())
    out = {f"p{i}": _np(p) for i, p in enumerate(params)}
    out.update({f"p{i}_shape": tuple(int(n) for n in p.shape) for i, p in enumerate(params)})
    out["count"] = np.array([float(len(params))])
    out["sequential"] = np.array([float(isinstance(model, torch.nn.Sequential))])
    return out


@probe
def model_step(torch_nets, *, builder, kwargs, x, y, lr, **weights):
    """Fixed weights (w0, w1, ... in registration order) in, then scores, loss, gradients and the
    loss after one SGD step (float64)."""
    weights = [weights[f"w{i}"] for i in range(len(weights))]
    model = _model(torch_nets, builder, kwargs).double()
    params = list(model.parameters())
    if [tuple(p.shape) for p in params] != [tuple(np.shape(w)) for w in weights]:
        raise ValueError(f"{builder}: parameter shapes {[tuple(p.shape) for p in params]}, expected "
                         f"{[tuple(np.shape(w)) for w in weights]} (in registration order)")
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(_t(w))
    model.train()
    xt, yt = _t(x), _t(y)
    scores = model(xt)
    loss = F.cross_entropy(scores, yt)
    loss.backward()
    grads = [_np(p.grad) if p.grad is not None else np.zeros(tuple(p.shape)) for p in params]
    with torch.no_grad():  # plain SGD by hand (torch.optim would load torch._dynamo)
        for p, g in zip(params, grads):
            p -= float(lr) * _t(g)
        after = F.cross_entropy(model(xt), yt)
    out = {"scores": _np(scores), "loss": _np(loss), "loss_after": _np(after)}
    out.update({f"d{i}": g for i, g in enumerate(grads)})
    return out


@probe
def challenge(torch_nets, *, X_digits, X_cifar10, X_patterns, weights_file, max_params):
    """Logits of the student's challenge model on the held-out images of its dataset.

    Builds challenge_model(dataset) from the student's module, loads the saved weights
    (weights_file, relative to the worker's folder) with torch.load(weights_only=True)
    (tensors and plain values only), and runs it in eval mode under inference_mode, on the
    CPU, in batches. A model with more than max_params parameters is refused.
    """
    name = os.path.basename(weights_file)
    saved = torch.load(weights_file, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("dataset") not in DATASET_CODES \
            or not isinstance(saved.get("state_dict"), dict):
        raise ValueError(f"{name} is not {{'dataset': 'patterns'|'digits'|'cifar10', 'state_dict': ...}}; "
                         "write it with torch_nets.save_challenge(model, dataset, path)")
    dataset = saved["dataset"]
    model = _model(torch_nets, "challenge_model", {"dataset": dataset})
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > max_params:
        raise ValueError(f"challenge_model({dataset!r}) has {n_params} parameters; the limit is "
                         f"{max_params}")
    model.load_state_dict(saved["state_dict"], strict=True)
    model = model.float().eval()
    X = {"digits": X_digits, "cifar10": X_cifar10, "patterns": X_patterns}[dataset]
    logits = []
    with torch.inference_mode():
        for i in range(0, len(X), CHALLENGE_BATCH):
            logits.append(_np(model(_t(X[i:i + CHALLENGE_BATCH]).float()).float()))
    logits = np.concatenate(logits) if logits else np.zeros((0, 10), np.float32)
    return {"logits": logits, "dataset": np.array([float(DATASET_CODES[dataset])])}
