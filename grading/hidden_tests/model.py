"""task2_9: the trained model, graded from its checkpoint by held-out test accuracy.

Grader side. The checkpoint is loaded into the instructor's ThreeLayerConvNet (never
unpickled: cs_layers.cnn.load_model uses allow_pickle=False, after a size check of the .npz
members here), and its accuracy is measured on test images that never enter the sandbox.
"""
from __future__ import annotations

import functools
import zipfile
from pathlib import Path

import numpy as np

from cs_layers import course
from grading.hidden_tests.points import MODEL_TASK, TASK_POINTS
from grading.results import TaskResult

MODEL_THRESHOLDS = {"patterns": 0.80, "digits": 0.90, "cifar10": 0.50}  # test accuracy for full points
CHANCE = 0.10  # ten classes: below chance scores 0, linear up to the threshold
MAX_MODEL_MACS = 16_000_000  # per image; the notebook's model (32 7x7 filters, 3x32x32) costs 5.6 M


def model_macs(model) -> int:
    """Multiply-adds of one forward pass of a ThreeLayerConvNet on one image."""
    W1, W2, W3 = (model.params[k] for k in ("W1", "W2", "W3"))
    F, C, fs, _ = W1.shape
    _, H, W = getattr(model, "input_dim", None) or (C, 32, 32)
    return int(F * C * fs * fs * H * W + W2.size + W3.size)  # 'same' conv, then two affines


@functools.lru_cache(maxsize=2)
def heldout(name: str):
    """(X_test, y_test) of the dataset `name`; FileNotFoundError when it is not on this machine."""
    from cs_layers.data import get_data

    data = get_data(name)
    return data["X_test"], data["y_test"]


def grade_model(npz_path: Path | None, *, data=None, load_heldout=heldout) -> TaskResult:
    """Grade task2_9: load the student's checkpoint into the reference net, test accuracy.

    Inputs:
    - npz_path: the student's convnet_model.npz, or None when absent
    - data: optional (X_test, y_test) to use instead of the dataset named in
      the checkpoint's metadata (tests use this)
    - load_heldout: name -> (X_test, y_test) of a dataset (default: its test split)
    """
    task, points = MODEL_TASK, TASK_POINTS[MODEL_TASK]
    if npz_path is None or not Path(npz_path).is_file():
        return TaskResult(task, 0.0, points, "missing",
                          f"{course.NOTEBOOK_DIR}/{course.MODEL_FILE} is not in the submission; "
                          "run the training cells of the notebook, which save it")
    from cs_layers.cnn import load_model

    try:
        with zipfile.ZipFile(npz_path) as zf:
            total = sum(i.file_size for i in zf.infolist())
        if total > course.MAX_MODEL_BYTES:
            return TaskResult(task, 0.0, points, "rejected",
                              f"the checkpoint unpacks to {total >> 20} MiB (limit "
                              f"{course.MAX_MODEL_BYTES >> 20} MiB); save only W1..b3 with save_model")
        model, meta = load_model(npz_path)
    except (ValueError, OSError, zipfile.BadZipFile, KeyError) as err:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the checkpoint could not be loaded: {str(err)[:300]}")
    macs = model_macs(model)
    if macs > MAX_MODEL_MACS:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the model costs {macs / 1e6:.0f} M multiply-adds per image (limit "
                          f"{MAX_MODEL_MACS / 1e6:.0f} M, about 3x the notebook's model); train "
                          "a smaller one (fewer or smaller filters, a smaller hidden layer)")
    dataset = str(meta.get("dataset", "digits"))
    if dataset not in MODEL_THRESHOLDS:
        return TaskResult(task, 0.0, points, "rejected",
                          f"the checkpoint says dataset={dataset!r}; save it with dataset="
                          + " or ".join(repr(d) for d in MODEL_THRESHOLDS))
    threshold = MODEL_THRESHOLDS[dataset]
    if data is None:
        try:
            data = load_heldout(dataset)
        except FileNotFoundError as err:
            return TaskResult(task, 0.0, points, "error",
                              f"the grading machine has no {dataset} test data; instructor: "
                              f"download it (datasets/get_datasets.sh) and regrade ({err})")
    X, y = data
    try:
        scores = np.concatenate([model.loss(X[i:i + 200]) for i in range(0, len(X), 200)])
    except (ValueError, IndexError) as err:
        return TaskResult(task, 0.0, points, "failed",
                          f"the model does not fit {dataset} images of shape "
                          f"{tuple(X.shape[1:])}: {str(err)[:200]}")
    acc = float(np.mean(np.argmax(scores, axis=1) == y))
    frac = min(1.0, max(0.0, (acc - CHANCE) / (threshold - CHANCE)))
    status = "passed" if acc >= threshold else "failed"
    return TaskResult(task, round(points * frac, 4), points, status,
                      f"held-out {dataset} test accuracy {acc:.3f} (full points at "
                      f">= {threshold:.2f}, none at <= {CHANCE:.2f})", None)
