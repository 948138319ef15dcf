"""Google Colab support (given code): the first cell of each notebook calls setup_colab.

On Colab the first cell mounts Google Drive, puts the assignment folder (the
release, unzipped into Drive) first on sys.path and calls setup_colab(root),
which:
- installs this package from that folder (`pip install --no-deps -e`) and the
  test tools Colab lacks, at the versions pinned in requirements.txt; Colab's own
  numpy, matplotlib and CUDA build of torch are kept (the grader uses the pins);
- changes into assignments/convnets/, so the notebook saves convnet_model.npz
  into Drive, where it survives the end of the Colab session;
- reports the GPU: the PyTorch notebook uses it when torch.cuda.is_available().
Outside Colab the cell does nothing and this module is never imported.
"""
import os
import subprocess
import sys
from pathlib import Path

from cs_layers import course

COLAB_EXTRAS = ("hypothesis", "pytest", "tqdm")   # what the checks need beyond Colab's preinstalled packages
GPU_HINT = "Runtime > Change runtime type > T4 GPU, then run the notebook again from the top"


def pinned(root, names=COLAB_EXTRAS):
    """The lines of root/requirements.txt that pin `names` (markers kept: pip evaluates them)."""
    lines = (Path(root) / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines
            if line.strip() and not line.startswith("#") and line.split("=")[0].split(";")[0].strip() in names]


def setup_colab(root, run=None):
    """Install the assignment at `root` into the Colab runtime, cd into its notebooks; returns the device name."""
    run = run or subprocess.run
    root = Path(root)
    if not (root / "cs_layers" / "__init__.py").is_file():
        raise FileNotFoundError(f"{root} does not hold the assignment (no cs_layers/); unzip the release "
                                f"into that folder of your Drive, or change ASSIGNMENT_IN_DRIVE in the first cell.")
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "-e", str(root)], check=True)
    run([sys.executable, "-m", "pip", "install", "--quiet", *pinned(root)], check=True)
    os.chdir(root / course.NOTEBOOK_DIR)
    import torch
    if torch.cuda.is_available():
        device = torch.cuda.get_device_name(0)
        print(f"Colab: assignment installed from {root}; GPU: {device}")
    else:
        device = "cpu"
        print(f"Colab: assignment installed from {root}; no GPU in this runtime ({GPU_HINT}).")
    return device
