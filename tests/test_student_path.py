"""A fresh student machine, end to end, from the release folder.

Build the release; in it, create a venv and install exactly as its README says;
run `python -m cs_layers.check` on the stubs (every task stops at its stub);
copy the reference solutions in (cs_layers/*.py and the notebooks' solution
cells); execute both notebooks headless (CS_LAYERS_FAST=1, the embedded data);
check the saved notebooks hold no progress-bar text and no figure twice;
`python -m cs_layers.submit`; autograde the zip with the instructor's grader.

The install follows the README's four commands. Its CPU-torch line for Linux
laptops is not run: download.pytorch.org is not reachable from CI (only PyPI);
there, pip's own configuration supplies the CPU wheel. pip's cache makes the
install fast when `make venv` ran before. Prints the time of each step.
"""
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from grading import release

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = Path("assignments") / "convnets"
BAR = re.compile(r"\d+%\|[^|]*\||\d+(\.\d+)?(it|s/it|cell|student)/s\]")


def install_commands(readme):
    """The bash block of the README's install section, minus comments."""
    section = readme.split("## 1. Install", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL).group(1)
    return [line.split("#")[0].strip() for line in block.splitlines() if line.split("#")[0].strip()]


def restore_notebook(release_nb, source_nb):
    """Put the source notebook's solution cells into the release notebook (matched by grade_id)."""
    source = {c.metadata.get("nbgrader", {}).get("grade_id"): c
              for c in nbformat.read(str(source_nb), as_version=4).cells}
    nb = nbformat.read(str(release_nb), as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = source[meta["grade_id"]].source
    nbformat.write(nb, str(release_nb))


EXECUTE = r"""
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=900, kernel_name="python3",
               resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}}).execute()
nbformat.write(nb, path)
"""


def saved_output_problems(path):
    problems = []
    for i, cell in enumerate(nbformat.read(str(path), as_version=4).cells):
        pngs = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            text = out.get("text", "") + str(data.get("text/plain", ""))
            if BAR.search(text) or "application/vnd.jupyter.widget-view+json" in data:
                problems.append(f"{path.name} cell {i}: progress bar saved: {text[:120]!r}")
            if "image/png" in data:
                pngs.append(data["image/png"])
        if len(pngs) != len(set(pngs)):
            problems.append(f"{path.name} cell {i}: a figure is shown twice")
    return problems


@pytest.mark.slow
def test_student_path_from_the_release(tmp_path):
    times = {}
    t = time.perf_counter()
    rel = tmp_path / "convnets"
    release.build(rel, ROOT, log=lambda *a: None)
    times["build release"] = time.perf_counter() - t
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))   # not this repository's .venv

    t = time.perf_counter()
    commands = install_commands((rel / "README.md").read_text(encoding="utf-8"))
    assert commands == ["python3 -m venv .venv", "source .venv/bin/activate", "pip install -r requirements.txt",
                        "pip install --no-deps -e ."], commands
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(commands)], cwd=rel, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    times["install (README commands)"] = time.perf_counter() - t
    py = str(rel / ".venv" / "bin" / "python")

    t = time.perf_counter()
    proc = subprocess.run([py, "-m", "cs_layers.check"], cwd=tmp_path, env=env, capture_output=True, text=True)
    times["check on the stubs"] = time.perf_counter() - t
    assert proc.returncode == 1, proc.stdout + proc.stderr
    rows = [line.split()[:2] for line in proc.stdout.splitlines() if re.match(r"task\d+_\d+ ", line)]
    assert rows and all(s in ("not", "needs", "no") for _, s in rows), proc.stdout

    for src in (ROOT / "cs_layers").glob("*.py"):
        shutil.copy(src, rel / "cs_layers" / src.name)
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        restore_notebook(rel / NB_DIR / name, ROOT / NB_DIR / name)

    t = time.perf_counter()
    nb_env = dict(env, CS_LAYERS_FAST="1", CS_LAYERS_DATA=str(tmp_path / "no-cifar"),
                  MPLBACKEND="module://matplotlib_inline.backend_inline")
    problems = []
    for name in ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb"):
        proc = subprocess.run([py, "-c", EXECUTE, str(rel / NB_DIR / name)], cwd=rel / NB_DIR, env=nb_env,
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        problems += saved_output_problems(rel / NB_DIR / name)
    times["execute both notebooks"] = time.perf_counter() - t
    assert not problems, "\n".join(problems)

    t = time.perf_counter()
    proc = subprocess.run([py, "-m", "cs_layers.submit"], cwd=rel, env=env, capture_output=True, text=True)
    times["submit"] = time.perf_counter() - t
    assert proc.returncode == 0 and (rel / "submission.zip").is_file(), proc.stdout + proc.stderr
    assert "FAILED" not in proc.stdout, proc.stdout

    t = time.perf_counter()
    subs = tmp_path / "submissions"
    subs.mkdir()
    shutil.copy(rel / "submission.zip", subs / "student1.zip")
    proc = subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out", str(tmp_path / "grades"),
                           "--jobs", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    times["autograde the zip"] = time.perf_counter() - t
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(tmp_path / "grades" / "grades.csv", newline="") as f:
        grades = list(csv.DictReader(f))
    not_full = [g for g in grades if g["status"] not in ("passed", "pending")]
    assert grades and not not_full, json.dumps(not_full, indent=1)

    print("\nstudent path from the release, seconds:")
    for step, secs in times.items():
        print(f"  {step:<28} {secs:7.1f}")
    print(f"  {'total':<28} {sum(times.values()):7.1f}")
