"""A fresh student machine, end to end, from the release folder: walked once per test session.

Copy the release; in it, create a venv and install exactly as its README says;
run `python -m cs_layers.check` on the stubs (every task stops at its stub);
copy the reference solutions in (cs_layers/*.py and the notebooks' solution
cells); execute both notebooks headless (CS_LAYERS_FAST=1, the embedded data);
`python -m cs_layers.submit`; autograde the zip with the instructor's grader.

The install follows the README's four commands. Its CPU-torch line for Linux
laptops is not run: download.pytorch.org is not reachable from CI (only PyPI);
there, pip's own configuration supplies the CPU wheel. pip's cache makes the
install fast when `make venv` ran before.

`walk` runs the steps in order and stops at the first that fails; the tests that
inspect its results (tests/test_student_path.py, and the notebook execution and
notebook grading tests) report that failure. This is the only place where the
notebooks run headless with the reference solutions.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
NB_DIR = Path("assignments") / "convnets"
NOTEBOOKS = ("ConvolutionalNetworks.ipynb", "PyTorch.ipynb")
STUDENT = "student1"
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


def walk(folder: Path, release_tree: Path) -> types.SimpleNamespace:
    """Walk the student path in folder/convnets (a copy of release_tree); never raises on a failed step.

    Returns: rel (the student's folder), times (step -> seconds), executed (notebook name ->
    saved-output problems, for each notebook that executed), check_stdout, submit_stdout,
    grades_out (the autograde --out folder, once graded), step (the last step started) and
    failure (None, or "step: why" for the step that failed).
    """
    w = types.SimpleNamespace(rel=folder / "convnets", times={}, executed={}, check_stdout=None,
                              submit_stdout=None, grades_out=None, step=None, failure=None)
    try:
        _walk(w, folder, release_tree)
    except AssertionError as err:
        w.failure = f"{w.step}: {err}"
    return w


def _step(w, name):
    w.step = name
    return time.perf_counter()


def _walk(w, tmp, release_tree):
    rel = w.rel
    t = _step(w, "copy the release")
    shutil.copytree(release_tree, rel, symlinks=True)
    w.times["copy the release"] = time.perf_counter() - t
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep)
                                  if not p.startswith(str(ROOT)))   # not this repository's .venv

    t = _step(w, "install (README commands)")
    commands = install_commands((rel / "README.md").read_text(encoding="utf-8"))
    assert commands == ["python3 -m venv .venv", "source .venv/bin/activate", "pip install -r requirements.txt",
                        "pip install --no-deps -e ."], commands
    proc = subprocess.run(["bash", "-c", "set -euo pipefail\n" + "\n".join(commands)], cwd=rel, env=env,
                          capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    w.times[w.step] = time.perf_counter() - t
    py = str(rel / ".venv" / "bin" / "python")

    t = _step(w, "check on the stubs")
    proc = subprocess.run([py, "-m", "cs_layers.check"], cwd=tmp, env=env, capture_output=True, text=True)
    w.times[w.step] = time.perf_counter() - t
    w.check_stdout = proc.stdout
    assert proc.returncode == 1, proc.stdout + proc.stderr

    for src in (ROOT / "cs_layers").glob("*.py"):
        shutil.copy(src, rel / "cs_layers" / src.name)
    for name in NOTEBOOKS:
        restore_notebook(rel / NB_DIR / name, ROOT / NB_DIR / name)

    t = _step(w, "execute both notebooks")
    nb_env = dict(env, CS_LAYERS_FAST="1", CS_LAYERS_DATA=str(tmp / "no-cifar"),
                  MPLBACKEND="module://matplotlib_inline.backend_inline")
    for name in NOTEBOOKS:
        w.step = f"execute {name} headless (CS_LAYERS_FAST=1)"
        proc = subprocess.run([py, "-c", EXECUTE, str(rel / NB_DIR / name)], cwd=rel / NB_DIR, env=nb_env,
                              capture_output=True, text=True, timeout=1800)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        w.executed[name] = saved_output_problems(rel / NB_DIR / name)
    w.times["execute both notebooks"] = time.perf_counter() - t

    t = _step(w, "submit")
    proc = subprocess.run([py, "-m", "cs_layers.submit"], cwd=rel, env=env, capture_output=True, text=True)
    w.times[w.step] = time.perf_counter() - t
    w.submit_stdout = proc.stdout
    assert proc.returncode == 0 and (rel / "submission.zip").is_file(), proc.stdout + proc.stderr

    t = _step(w, "autograde the zip")
    subs = tmp / "submissions"
    subs.mkdir()
    shutil.copy(rel / "submission.zip", subs / f"{STUDENT}.zip")
    proc = subprocess.run([sys.executable, "-m", "grading", "autograde", str(subs), "--out", str(tmp / "grades"),
                           "--jobs", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    w.times[w.step] = time.perf_counter() - t
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    w.grades_out = tmp / "grades"
    w.step = None
