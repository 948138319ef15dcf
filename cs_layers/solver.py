"""Solver: trains a classification model with minibatch gradient descent (given code).

A model is any object with
- `model.params`: dict mapping parameter names to numpy arrays;
- `model.loss(X, y=None)`: returns scores (N, C) when y is None, and
  `(loss, grads)` otherwise, with `grads` keyed like `params`.

Example:

    data = get_data()       # X_train, y_train, X_val, y_val, ...
    model = ThreeLayerConvNet(reg=1e-3)
    solver = Solver(model, data, update_rule="adam",
                    optim_config={"learning_rate": 1e-3},
                    lr_decay=0.95, num_epochs=5, batch_size=100)
    solver.train()
    solver.best_val_acc     # model.params now hold the best validation params

During training a progress bar runs over the iterations, with the latest
loss and accuracies in its postfix (cs_layers.progress: a widget in a Jupyter
UI, none in a headless notebook run, text in a terminal); `verbose=False` turns it and all printing
off. Minibatches and accuracy subsamples are drawn from numpy's global random
state, so `np.random.seed(...)` makes a run repeatable.
"""
import os
import tempfile
import warnings

import numpy as np

from cs_layers import optim
from cs_layers.progress import tqdm

UPDATE_RULES = ("sgd", "sgd_momentum", "rmsprop", "adam")

_DEFAULTS = {
    "update_rule": "sgd",     # a name in UPDATE_RULES, or a callable update(w, dw, config)
    "optim_config": None,     # dict of hyperparameters for the rule, e.g. {"learning_rate": 1e-3}
    "lr_decay": 1.0,          # learning rate is multiplied by this after every epoch
    "batch_size": 100,        # minibatch size
    "num_epochs": 10,         # passes over the training set
    "num_train_samples": 1000,  # training examples used to estimate train accuracy (None: all)
    "num_val_samples": None,  # validation examples used to estimate val accuracy (None: all)
    "checkpoint_name": None,  # if set, write <name>_epoch_<e>.npz after every epoch
    "print_every": 100,       # write a loss line every this many iterations
    "verbose": True,          # progress bar and printing
}

_DATA_KEYS = ("X_train", "y_train", "X_val", "y_val")


class Solver:
    """Trains `model` on `data`; see the module docstring.

    Inputs:
    - model: object with `params` (dict name -> array) and `loss(X, y=None)`
    - data: dict with X_train (N_train, ...), y_train (N_train,),
      X_val (N_val, ...), y_val (N_val,); other keys are ignored
    - kwargs: the options in `_DEFAULTS` (update_rule, optim_config, lr_decay,
      batch_size, num_epochs, num_train_samples, num_val_samples,
      checkpoint_name, print_every, verbose). Any other name raises ValueError.

    After `train()`:
    - loss_history: list of minibatch losses, one per iteration
    - train_acc_history, val_acc_history: accuracies at the start and after
      every epoch
    - best_val_acc, best_params: the best validation accuracy and a copy of
      the params that reached it; `model.params` are set to `best_params`
    """

    def __init__(self, model, data, **kwargs):
        unknown = sorted(set(kwargs) - set(_DEFAULTS))
        if unknown:
            raise ValueError(
                f"Solver got unknown keyword argument(s) {unknown}; "
                f"the accepted ones are {sorted(_DEFAULTS)}. Check the spelling.")
        missing = [k for k in _DATA_KEYS if k not in data]
        if missing:
            raise ValueError(
                f"Solver: data is missing {missing}; pass a dict with keys {list(_DATA_KEYS)}, "
                "for example the one returned by cs_layers.data.get_data().")
        for split in ("train", "val"):
            X, y = data[f"X_{split}"], data[f"y_{split}"]
            if len(X) != len(y) or len(X) == 0:
                raise ValueError(
                    f"Solver: X_{split} has {len(X)} examples and y_{split} has {len(y)}; "
                    "they must be equal and non-zero.")
        if not hasattr(model, "params") or not callable(getattr(model, "loss", None)):
            raise ValueError("Solver: model needs a `params` dict and a `loss(X, y=None)` method.")

        opts = {**_DEFAULTS, **kwargs}
        self.model = model
        self.X_train, self.y_train = data["X_train"], data["y_train"]
        self.X_val, self.y_val = data["X_val"], data["y_val"]
        self.update_rule = opts["update_rule"]
        self.optim_config = dict(opts["optim_config"] or {})
        self.lr_decay = opts["lr_decay"]
        self.batch_size = opts["batch_size"]
        self.num_epochs = opts["num_epochs"]
        self.num_train_samples = opts["num_train_samples"]
        self.num_val_samples = opts["num_val_samples"]
        self.checkpoint_name = opts["checkpoint_name"]
        self.print_every = opts["print_every"]
        self.verbose = opts["verbose"]

        if callable(self.update_rule):
            self._update = self.update_rule
        elif self.update_rule in UPDATE_RULES:
            self._update = getattr(optim, self.update_rule)
        else:
            raise ValueError(
                f"Solver: unknown update_rule {self.update_rule!r}; use one of {list(UPDATE_RULES)} "
                "or pass a function update(w, dw, config) -> (next_w, config).")
        for name in ("batch_size", "num_epochs", "print_every"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"Solver: {name} must be a positive integer, got {value!r}.")
        self._reset()

    def _reset(self):
        """Bookkeeping; called by __init__, do not call it by hand."""
        self.epoch = 0
        self.best_val_acc = 0.0
        self.best_params = {}
        self.loss_history = []
        self.train_acc_history = []
        self.val_acc_history = []
        # One config per parameter: optimizer state (momentum, Adam moments) is per array.
        self.optim_configs = {p: dict(self.optim_config) for p in self.model.params}

    def _step(self):
        """One gradient update on a random minibatch; returns the loss."""
        num_train = self.X_train.shape[0]
        batch_mask = np.random.choice(num_train, self.batch_size)
        X_batch, y_batch = self.X_train[batch_mask], self.y_train[batch_mask]

        loss, grads = self.model.loss(X_batch, y_batch)
        self.loss_history.append(float(loss))
        for p, w in self.model.params.items():
            next_w, next_config = self._update(w, grads[p], self.optim_configs[p])
            self.model.params[p] = next_w
            self.optim_configs[p] = next_config
        return float(loss)

    def check_accuracy(self, X, y, num_samples=None, batch_size=100):
        """Fraction of examples the model classifies correctly.

        Inputs:
        - X: data, shape (N, d_1, ..., d_k)
        - y: labels, shape (N,)
        - num_samples: if not None and < N, use a random subsample of this size
        - batch_size: examples per forward pass (bounds memory)

        Returns:
        - acc: float in [0, 1]
        """
        N = X.shape[0]
        if num_samples is not None and N > num_samples:
            mask = np.random.choice(N, num_samples)
            N, X, y = num_samples, X[mask], y[mask]
        y_pred = []
        for start in range(0, N, batch_size):
            scores = self.model.loss(X[start:start + batch_size])
            y_pred.append(np.argmax(scores, axis=1))
        return float(np.mean(np.concatenate(y_pred) == y))

    def _check_accuracies(self):
        train_acc = self.check_accuracy(self.X_train, self.y_train, num_samples=self.num_train_samples)
        val_acc = self.check_accuracy(self.X_val, self.y_val, num_samples=self.num_val_samples)
        self.train_acc_history.append(train_acc)
        self.val_acc_history.append(val_acc)
        if val_acc > self.best_val_acc or not self.best_params:
            self.best_val_acc = val_acc
            self.best_params = {k: v.copy() for k, v in self.model.params.items()}
        return train_acc, val_acc

    def _save_checkpoint(self):
        """Write <checkpoint_name>_epoch_<epoch>.npz atomically (no pickle); returns the path."""
        path = f"{self.checkpoint_name}_epoch_{self.epoch}.npz"
        arrays = {f"params/{k}": v for k, v in self.model.params.items()}
        arrays.update(
            epoch=np.int64(self.epoch),
            batch_size=np.int64(self.batch_size),
            lr_decay=np.float64(self.lr_decay),
            update_rule=np.str_(self.update_rule if isinstance(self.update_rule, str)
                                else getattr(self.update_rule, "__name__", "custom")),
            loss_history=np.asarray(self.loss_history, dtype=np.float64),
            train_acc_history=np.asarray(self.train_acc_history, dtype=np.float64),
            val_acc_history=np.asarray(self.val_acc_history, dtype=np.float64),
        )
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".checkpoint-", suffix=".npz.tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **arrays)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    def train(self):
        """Run optimization for num_epochs, then restore the best validation params."""
        num_train = self.X_train.shape[0]
        iterations_per_epoch = max(num_train // self.batch_size, 1)
        num_iterations = self.num_epochs * iterations_per_epoch
        train_acc, val_acc = self._check_accuracies()
        postfix = {"loss": float("nan"), "train_acc": train_acc, "val_acc": val_acc}

        bar = tqdm(range(num_iterations), desc="training", unit="it",
                   disable=not self.verbose, leave=True)
        for t in bar:
            loss = self._step()
            if not np.isfinite(loss):
                warnings.warn(
                    f"Solver: loss became {loss} at iteration {t + 1}; stopping early. "
                    "Lower the learning rate or weight_scale, or check your gradients.",
                    RuntimeWarning, stacklevel=2)
                break
            postfix["loss"] = loss
            if self.verbose and (t + 1) % self.print_every == 0:
                bar.write(f"(Iteration {t + 1} / {num_iterations}) loss: {loss:f}")

            if (t + 1) % iterations_per_epoch == 0:
                self.epoch += 1
                for config in self.optim_configs.values():
                    if "learning_rate" in config:
                        config["learning_rate"] *= self.lr_decay
                train_acc, val_acc = self._check_accuracies()
                postfix.update(train_acc=train_acc, val_acc=val_acc)
                if self.verbose:
                    bar.write(f"(Epoch {self.epoch} / {self.num_epochs}) "
                              f"train acc: {train_acc:f}; val_acc: {val_acc:f}")
                if self.checkpoint_name is not None:
                    self._save_checkpoint()
            bar.set_postfix({k: f"{v:.3f}" for k, v in postfix.items()}, refresh=False)
        bar.close()

        # Keep the best validation params, as the module docstring promises.
        self.model.params = self.best_params
        self.best_params = {k: v.copy() for k, v in self.best_params.items()}


def load_checkpoint(path):
    """Read a checkpoint written by Solver (no pickle).

    Returns a dict with `params` (dict name -> array), `epoch` (int),
    `update_rule` (str), `batch_size`, `lr_decay`, `loss_history`,
    `train_acc_history`, `val_acc_history`.
    """
    with np.load(path, allow_pickle=False) as f:
        out = {"params": {k.split("/", 1)[1]: f[k] for k in f.files if k.startswith("params/")}}
        for k in f.files:
            if not k.startswith("params/"):
                out[k] = f[k].item() if f[k].ndim == 0 else f[k]
    return out
