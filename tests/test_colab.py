"""The Colab cell: first code cell of both notebooks, a no-op outside Colab.

On "Colab" (a fake google.colab module) the cell mounts Drive, installs the
assignment from the Drive folder, changes into its notebooks folder and reports
the GPU. pip is replaced by a recorder; the mount point is moved into tmp_path.
"""
import json
import os
import shutil
import sys
import types
from pathlib import Path

import pytest
import torch

from cs_layers import colab

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ["ConvolutionalNetworks.ipynb", "PyTorch.ipynb"]


def first_code_cell(path):
    cells = json.loads(Path(path).read_text(encoding="utf-8"))["cells"]
    cell = next(c for c in cells if c["cell_type"] == "code")
    return "".join(cell["source"])


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_first_cell_is_the_colab_cell(name):
    src = first_code_cell(ROOT / "assignments" / "convnets" / name)
    assert src.startswith("# Google Colab only") and 'if "google.colab" in sys.modules:' in src


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_outside_colab_the_cell_does_nothing(name, monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    cwd, path = os.getcwd(), list(sys.path)
    namespace = {}
    exec(first_code_cell(ROOT / "assignments" / "convnets" / name), namespace)
    assert os.getcwd() == cwd and sys.path == path
    assert set(namespace) - {"__builtins__"} == {"ASSIGNMENT_IN_DRIVE", "sys"}
    assert capsys.readouterr().out == ""


@pytest.fixture
def fake_colab(tmp_path, monkeypatch):
    mounted = []
    drive = types.SimpleNamespace(mount=lambda path: mounted.append(path))
    google = types.ModuleType("google")
    colab_module = types.ModuleType("google.colab")
    colab_module.drive = drive
    google.colab = colab_module
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab_module)
    folder = tmp_path / "drive" / "MyDrive" / "convnets"   # the release, unzipped into Drive
    (folder / "cs_layers").mkdir(parents=True)
    (folder / "cs_layers" / "__init__.py").write_text("")
    (folder / "assignments" / "convnets").mkdir(parents=True)
    shutil.copy(ROOT / "requirements.txt", folder / "requirements.txt")
    calls = []
    monkeypatch.setattr(colab.subprocess, "run", lambda cmd, check: calls.append(cmd))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    return types.SimpleNamespace(mounted=mounted, folder=folder, calls=calls, drive=tmp_path / "drive")


@pytest.mark.parametrize("name", NOTEBOOKS)
@pytest.mark.parametrize("gpu", [True, False])
def test_on_colab_the_cell_mounts_installs_and_picks_the_gpu(name, gpu, fake_colab, monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Tesla T4")
    src = first_code_cell(ROOT / "assignments" / "convnets" / name)
    assert src.count('"/content/drive"') == 1 and src.count('"/content/drive/"') == 1
    src = src.replace('"/content/drive"', repr(str(fake_colab.drive))).replace(
        '"/content/drive/"', repr(str(fake_colab.drive) + "/"))
    exec(src, {})
    assert fake_colab.mounted == [str(fake_colab.drive)]
    assert Path(os.getcwd()) == fake_colab.folder / "assignments" / "convnets"
    assert sys.path[0] == str(fake_colab.folder)
    editable, extras = fake_colab.calls
    assert editable[1:] == ["-m", "pip", "install", "--quiet", "--no-deps", "-e", str(fake_colab.folder)]
    assert any(x.startswith("hypothesis==") for x in extras) and not any(x.startswith(("torch", "numpy"))
                                                                        for x in extras)
    out = capsys.readouterr().out
    assert ("GPU: Tesla T4" in out) if gpu else ("no GPU in this runtime" in out and "T4 GPU" in out)


def test_a_wrong_drive_folder_says_what_to_do(fake_colab):
    shutil.rmtree(fake_colab.folder / "cs_layers")
    with pytest.raises(FileNotFoundError, match="change ASSIGNMENT_IN_DRIVE"):
        colab.setup_colab(fake_colab.folder)
