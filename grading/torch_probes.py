"""Runs INSIDE the sandbox next to worker.py: the PyTorch probes of task3_1 to task3_5.

A probe is a plan step ``{"probe": name, "module": "torch_nets", "args": [...]}``;
``worker.run_case`` calls ``PROBES[name](student_module, *args)``. Every probe
takes numpy arrays and JSON values, does one job with torch (forward, autograd,
one SGD step, an initialisation, the challenge logits) and returns a dict of
numpy arrays. The grader runs the same probes on the instructor's torch_nets to
get the expected outputs, so the probes are the only torch code both sides share.

Loaded by the worker before any student code runs: torch is imported once per
worker process, with CUDA hidden, so no result depends on the grader's device.
"""
import os

os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch: the same CPU arithmetic on every grader

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(1)
CHALLENGE_PATH = os.path.join("challenge", "challenge_model.pt")  # relative to the worker's cwd
DATASET_CODES = {"digits": 0, "cifar10": 1, "patterns": 2}  # also the order of challenge()'s images
MAX_CHALLENGE_PARAMS = 5_000_000
CHALLENGE_BATCH = 250


def _t(a, grad=False):
    return torch.tensor(np.asarray(a), requires_grad=grad)


def _np(t):
    return t.detach().cpu().numpy().copy()


def barebones(module, fn, x, *params_and_dout):
    """Forward and backward of a barebones net: scores, dx and one gradient per parameter."""
    *params, dscores = params_and_dout
    xt = _t(x, grad=True)
    pt = [_t(p, grad=True) for p in params]
    scores = getattr(module, fn)(xt, pt)
    scores.backward(_t(dscores))
    out = {"scores": _np(scores), "dx": _np(xt.grad)}
    out.update({f"d{i}": _np(p.grad) for i, p in enumerate(pt)})
    return out


def init_tensors(module, fn, args, kwargs):
    """The tensors an initialiser returns (one tensor or a list), and whether each is a leaf with grad."""
    torch.manual_seed(0)
    made = getattr(module, fn)(*args, **kwargs)
    tensors = made if isinstance(made, (list, tuple)) else [made]
    out = {f"t{i}": _np(t) for i, t in enumerate(tensors)}
    out["leaf_grad"] = np.array([float(t.is_leaf and t.requires_grad) for t in tensors])
    out["count"] = np.array([float(len(tensors))])
    return out


def _model(module, builder, kwargs):
    model = getattr(module, builder)(**kwargs)
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"{builder} returned a {type(model).__name__}, not an nn.Module")
    return model


def model_init(module, builder, kwargs):
    """A freshly built model's parameters, in registration order, and its class facts."""
    torch.manual_seed(0)
    model = _model(module, builder, kwargs)
    params = list(model.parameters())
    out = {f"p{i}": _np(p) for i, p in enumerate(params)}
    out["count"] = np.array([float(len(params))])
    out["sequential"] = np.array([float(isinstance(model, torch.nn.Sequential))])
    return out


def model_step(module, builder, kwargs, x, y, lr, *weights):
    """Fixed weights in, then scores, loss, gradients and the loss after one SGD step (float64)."""
    model = _model(module, builder, kwargs).double()
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


def challenge(module, X_digits, X_cifar, X_patterns):
    """Logits of the student's challenge model on the held-out images of its dataset.

    Builds challenge_model(dataset) from the student's module, loads the saved
    weights with torch.load(weights_only=True) (tensors and plain values only),
    and runs it in eval mode under inference_mode, on the CPU, in batches.
    """
    saved = torch.load(CHALLENGE_PATH, map_location="cpu", weights_only=True)
    if not isinstance(saved, dict) or saved.get("dataset") not in DATASET_CODES \
            or not isinstance(saved.get("state_dict"), dict):
        raise ValueError("challenge_model.pt is not {'dataset': 'patterns'|'digits'|'cifar10', 'state_dict': ...}; "
                         "write it with torch_nets.save_challenge(model, dataset, path)")
    dataset = saved["dataset"]
    model = _model(module, "challenge_model", {"dataset": dataset})
    n_params = sum(p.numel() for p in model.parameters())
    if n_params > MAX_CHALLENGE_PARAMS:
        raise ValueError(f"challenge_model({dataset!r}) has {n_params} parameters; the limit is "
                         f"{MAX_CHALLENGE_PARAMS}")
    model.load_state_dict(saved["state_dict"], strict=True)
    model = model.float().eval()
    X = {"digits": X_digits, "cifar10": X_cifar, "patterns": X_patterns}[dataset]
    logits = []
    with torch.inference_mode():
        for i in range(0, len(X), CHALLENGE_BATCH):
            logits.append(_np(model(_t(X[i:i + CHALLENGE_BATCH]).float()).float()))
    logits = np.concatenate(logits) if logits else np.zeros((0, 10), np.float32)
    return {"logits": logits, "dataset": np.array([float(DATASET_CODES[dataset])])}


PROBES = {"barebones": barebones, "init_tensors": init_tensors, "model_init": model_init,
          "model_step": model_step, "challenge": challenge}
