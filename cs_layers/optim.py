"""First-order update rules (given code).

Every rule has the same interface:

    next_w, config = update(w, dw, config=None)

Inputs:
- w: array of parameters, any shape
- dw: array of the same shape, the gradient of the loss with respect to w
- config: dict of hyperparameters and state (learning rate, moving averages).
  Missing entries get their defaults through `config.setdefault`, and the
  rule stores its state back into the same dict, so pass the returned config
  to the next call. The Solver keeps one config per parameter.

Returns:
- next_w: the updated parameters, same shape and dtype as w (a new array;
  w is never modified in place)
- config: the config dict, with its state updated
"""
import numpy as np


def _check(w, dw, name):
    if np.shape(w) != np.shape(dw):
        raise ValueError(
            f"{name}: w has shape {np.shape(w)} but dw has shape {np.shape(dw)}; "
            "pass the gradient of this very parameter (grads[p] for params[p]).")


def sgd(w, dw, config=None):
    """Vanilla stochastic gradient descent: w -= learning_rate * dw.

    config:
    - learning_rate: scalar step size (default 1e-2)
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    _check(w, dw, "sgd")
    next_w = w - config["learning_rate"] * dw
    return next_w.astype(np.asarray(w).dtype, copy=False), config


def sgd_momentum(w, dw, config=None):
    """SGD with momentum.

    v = momentum * v - learning_rate * dw;  w += v

    config:
    - learning_rate: scalar step size (default 1e-2)
    - momentum: scalar in [0, 1), 0 gives plain SGD (default 0.9)
    - velocity: moving average of the updates, same shape as w (state)
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("momentum", 0.9)
    _check(w, dw, "sgd_momentum")
    v = config.get("velocity", np.zeros_like(w))
    v = config["momentum"] * v - config["learning_rate"] * dw
    next_w = w + v
    config["velocity"] = v
    return next_w.astype(np.asarray(w).dtype, copy=False), config


def rmsprop(w, dw, config=None):
    """RMSProp: scale each step by a moving average of squared gradients.

    cache = decay_rate * cache + (1 - decay_rate) * dw**2
    w -= learning_rate * dw / (sqrt(cache) + epsilon)

    config:
    - learning_rate: scalar step size (default 1e-2)
    - decay_rate: decay of the squared-gradient average, in [0, 1) (default 0.99)
    - epsilon: small number that avoids division by zero (default 1e-8)
    - cache: moving average of dw**2, same shape as w (state)
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-2)
    config.setdefault("decay_rate", 0.99)
    config.setdefault("epsilon", 1e-8)
    _check(w, dw, "rmsprop")
    cache = config.get("cache", np.zeros_like(w))
    cache = config["decay_rate"] * cache + (1 - config["decay_rate"]) * dw ** 2
    next_w = w - config["learning_rate"] * dw / (np.sqrt(cache) + config["epsilon"])
    config["cache"] = cache
    return next_w.astype(np.asarray(w).dtype, copy=False), config


def adam(w, dw, config=None):
    """Adam: moving averages of the gradient and its square, bias-corrected.

    t += 1
    m = beta1 * m + (1 - beta1) * dw;        v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t);              v_hat = v / (1 - beta2**t)
    w -= learning_rate * m_hat / (sqrt(v_hat) + epsilon)

    config:
    - learning_rate: scalar step size (default 1e-3)
    - beta1: decay of the first moment (default 0.9)
    - beta2: decay of the second moment (default 0.999)
    - epsilon: small number that avoids division by zero (default 1e-8)
    - m, v: the moment estimates, same shape as w (state)
    - t: the number of updates made so far (state)
    """
    config = {} if config is None else config
    config.setdefault("learning_rate", 1e-3)
    config.setdefault("beta1", 0.9)
    config.setdefault("beta2", 0.999)
    config.setdefault("epsilon", 1e-8)
    config.setdefault("m", np.zeros_like(w))
    config.setdefault("v", np.zeros_like(w))
    config.setdefault("t", 0)
    _check(w, dw, "adam")
    b1, b2 = config["beta1"], config["beta2"]
    t = config["t"] + 1
    m = b1 * config["m"] + (1 - b1) * dw
    v = b2 * config["v"] + (1 - b2) * dw ** 2
    m_hat = m / (1 - b1 ** t)
    v_hat = v / (1 - b2 ** t)
    next_w = w - config["learning_rate"] * m_hat / (np.sqrt(v_hat) + config["epsilon"])
    config.update(m=m, v=v, t=t)
    return next_w.astype(np.asarray(w).dtype, copy=False), config
