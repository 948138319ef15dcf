"""python -m cs_layers.train: the demo's training command."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cs_layers.train import parse_args

REPO = Path(__file__).resolve().parent.parent


def train(tmp_path, *args):
    env = {**os.environ, "CS_LAYERS_DATA": str(tmp_path)}  # no CIFAR-10 there
    return subprocess.run([sys.executable, "-m", "cs_layers.train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def accuracies(stdout):
    m = re.search(r"train acc ([\d.]+), val acc ([\d.]+), test acc ([\d.]+)", stdout)
    assert m, f"no accuracy line in:\n{stdout}"
    return [float(v) for v in m.groups()]


def test_defaults_and_bad_arguments(capsys):
    args = parse_args([])
    assert (args.data, args.epochs, args.update_rule) == ("auto", 2, "adam")
    with pytest.raises(SystemExit) as info:
        parse_args(["--epochs", "0"])
    assert info.value.code == 2 and "--epochs must be a positive integer" in capsys.readouterr().err


def test_small_run_reports_and_saves_a_loadable_model(tmp_path):
    from cs_layers.cnn import load_model
    out = tmp_path / "model.npz"
    res = train(tmp_path, "--data", "digits", "--epochs", "1", "--num-filters", "4", "--hidden-dim", "16",
                "--quiet", "--save", str(out))
    assert res.returncode == 0, res.stderr
    assert "Using the embedded digits dataset" in res.stdout
    assert "for 1 epoch(s)" in res.stdout
    train_acc, val_acc, test_acc = accuracies(res.stdout)
    assert val_acc > 0.3, res.stdout  # far above chance (0.1) after one epoch
    model, meta = load_model(out)
    assert meta["dataset"] == "digits" and model.params["W1"].shape[0] == 4
