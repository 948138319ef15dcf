"""The nbgrader source notebooks: structure, nbgrader release, and headless execution.

- Static checks (fast): every nbgrader cell id is a task id from pyproject.toml (or
  `<task_id>_<suffix>`), grade cells are locked and assert, each task has a heading,
  and the ConvolutionalNetworks notebook holds no layer implementations.
- `nbgrader generate_assignment convnets` accepts the notebooks in a throwaway course
  directory and strips every solution (slow; the release build runs it once per session).
- Both notebooks execute top to bottom with nbclient, CS_LAYERS_FAST=1, the reference
  solutions and the embedded digits dataset: tests/test_student_path.py (the student path
  executes them once per session).
"""
import os
import re
from pathlib import Path

import nbformat
import pytest
import tomllib

from session import release_tree

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "assignments" / "convnets"
NOTEBOOKS = ["ConvolutionalNetworks.ipynb", "PyTorch.ipynb"]
TASK_ID = re.compile(r"^(task\d+_\d+)(?:_[a-z0-9_]+)?$")


def task_ids():
    markers = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["markers"]
    return {m.split(":")[0].strip() for m in markers if m.startswith("task")}


def load(name):
    return nbformat.read(SOURCE / name, as_version=4)


def nbgrader_cells(nb):
    return [c for c in nb.cells if "nbgrader" in c.metadata]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_valid_and_has_no_outputs(name):
    nb = load(name)
    nbformat.validate(nb)
    executed = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not executed, f"{name}: cells {executed} carry outputs; commit source notebooks cleared (Clear All Outputs)"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_grade_ids_are_known_task_ids(name):
    known = task_ids()
    seen = set()
    for cell in nbgrader_cells(load(name)):
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        match = TASK_ID.match(grade_id)
        assert match and match.group(1) in known, (
            f"{name}: grade_id {grade_id!r} is not a task id from pyproject.toml markers "
            f"(or <task_id>_<suffix>); known: {sorted(known)}")
        assert grade_id not in seen, f"{name}: grade_id {grade_id!r} is used twice; make it unique"
        seen.add(grade_id)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_grade_cells_are_locked_assert_and_have_headings(name):
    nb = load(name)
    headings = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for cell in nbgrader_cells(nb):
        meta = cell.metadata["nbgrader"]
        gid = meta["grade_id"]
        task = TASK_ID.match(gid).group(1)
        assert re.search(rf"^#+ .*\b{task}\b", headings, re.M), f"{name}: no markdown heading names {task}"
        if meta["grade"]:
            assert meta.get("points", 0) > 0, f"{name}: grade cell {gid} has no points"
        if meta["grade"] and not meta["solution"]:
            assert cell.cell_type == "code" and meta["locked"], \
                f"{name}: autograded cell {gid} must be a locked code cell"
            assert re.search(r"\bassert\b|check_close\(|check_target\(|check_sandwich\(", cell.source), (
                f"{name}: grade cell {gid} checks nothing; every check must assert")
        if meta["solution"] and cell.cell_type == "code":
            assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source, (
                f"{name}: solution cell {gid} needs a ### BEGIN SOLUTION / ### END SOLUTION region")
    for cell in nb.cells:
        if "BEGIN SOLUTION" in cell.source:
            assert cell.metadata.get("nbgrader", {}).get("solution"), (
                f"{name}: a solution region sits in a cell that is not a solution cell; mark it as one")


def test_convnets_notebook_imports_layers_instead_of_defining_them():
    nb = load("ConvolutionalNetworks.ipynb")
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    defined = re.findall(r"^def ((?:conv|max_pool|affine|relu|spatial|batchnorm)\w*)", code, re.M)
    assert not defined, f"layer implementations {defined} belong in cs_layers/, not in notebook cells"
    assert "%autoreload 2" in code and "from cs_layers.layers import" in code


def test_parameters_cell_reads_fast_mode():
    for name in NOTEBOOKS:
        cells = [c for c in load(name).cells if "parameters" in c.metadata.get("tags", [])]
        assert len(cells) == 1 and "CS_LAYERS_FAST" in cells[0].source, (
            f"{name}: needs exactly one cell tagged 'parameters' that reads CS_LAYERS_FAST")


# The barebones nets' parameters are plain tensors: nothing moves them to the GPU later, so
# each one must be made on the notebook's device (on a CPU-only machine a forgotten device=
# passes unseen; on CUDA the first matrix product fails).
PARAMETER_MAKERS = {"random_weight", "zero_weight", "three_layer_convnet_params"}


def test_pytorch_notebook_makes_barebones_parameters_on_its_device():
    import ast

    from IPython.core.inputtransformer2 import TransformerManager
    missing = []
    for index, cell in enumerate(load("PyTorch.ipynb").cells):
        if cell.cell_type != "code":
            continue
        source = TransformerManager().transform_cell(cell.source)  # %magics (in blocks too) as calls
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "id", getattr(node.func, "attr", None))
                if name in PARAMETER_MAKERS and "device" not in {k.arg for k in node.keywords}:
                    missing.append(f"cell {index}: {ast.unparse(node)}")
    assert not missing, ("PyTorch.ipynb makes barebones parameters without device=device (they stay on the "
                         "CPU while the batches go to CUDA): " + "; ".join(missing))


@pytest.mark.slow
def test_nbgrader_generate_assignment_strips_solutions(tmp_path_factory):
    # The release build (built once per session) runs `nbgrader generate_assignment convnets` in a
    # throwaway course folder; its notebooks are nbgrader's output, unchanged.
    released_dir = release_tree(tmp_path_factory) / "assignments" / "convnets"
    for name in NOTEBOOKS:
        released = released_dir / name
        assert released.is_file(), f"nbgrader did not write {released}"
        text = released.read_text()
        for leak in ("BEGIN SOLUTION", "END SOLUTION", "825,046", "ThreeLayerConvNet(hidden_dim=hidden_dim"):
            assert leak not in text, f"release {name} still contains {leak!r}"
        nb = nbformat.reads(text, as_version=4)
        for cell in nbgrader_cells(nb):
            meta = cell.metadata["nbgrader"]
            if meta["solution"] and cell.cell_type == "code":
                assert "raise NotImplementedError" in cell.source, f"{name}: {meta['grade_id']} was not stubbed"
            if meta["solution"] and cell.cell_type == "markdown":
                assert "YOUR ANSWER HERE" in cell.source, f"{name}: {meta['grade_id']} answer was not cleared"


def _execute_as_grading_run(nb, work, tmp_path, monkeypatch):
    """Execute `nb` in `work` as the autograder runs it (CS_LAYERS_GRADING=1, no CIFAR-10)."""
    from nbclient import NotebookClient

    monkeypatch.setenv("CS_LAYERS_GRADING", "1")
    monkeypatch.setenv("CS_LAYERS_FAST", "1")
    monkeypatch.setenv("CS_LAYERS_DATA", str(tmp_path / "no-cifar"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in [str(ROOT), os.environ.get("PYTHONPATH")] if p))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()


@pytest.mark.slow
def test_grading_run_loads_the_checkpoint_instead_of_training(tmp_path, monkeypatch):
    # Under the autograder (CS_LAYERS_GRADING=1) the task2_9 training cell loads the submitted
    # convnet_model.npz instead of training again: grade_model scores that file itself.
    import numpy as np

    from cs_layers.cnn import ThreeLayerConvNet, save_model

    work = tmp_path / "assignments" / "convnets"
    work.mkdir(parents=True)
    np.random.seed(0)
    submitted = ThreeLayerConvNet(input_dim=(3, 32, 32), hidden_dim=17)  # untrained: never retrained below
    save_model(work / "convnet_model.npz", submitted, dataset="digits")
    nb = load("ConvolutionalNetworks.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    keep = [next(c for c in code if "%autoreload" in c.source)]  # setup: imports, report, check_close
    keep += [c for c in code if "parameters" in c.metadata.get("tags", [])]
    keep += [c for c in code if 'get_data("auto")' in c.source]
    keep += [c for c in code if "import ThreeLayerConvNet" in c.source]
    keep += [c for c in code if c.metadata.get("nbgrader", {}).get("grade_id") == "task2_9_train"]
    assert len(keep) == 5, "the setup, parameters, data, import and task2_9_train cells must exist"
    keep.append(nbformat.v4.new_code_cell(
        "assert solver.loss_history == [], 'the grading run trained again'\n"
        "assert model.params['W2'].shape[1] == 17 and solver.model is model\n"))
    nb.cells = keep
    _execute_as_grading_run(nb, work, tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for o in keep[4].outputs)
    assert "loaded the submitted convnet_model.npz" in printed, printed


@pytest.mark.slow
def test_grading_run_shortens_the_demonstrations_and_still_checks_overfitting(tmp_path, monkeypatch):
    # Under the autograder the speed tests run on 4 images and the overfitting demonstration
    # keeps its 20 epochs (5 are too few on the patterns); task2_8_overfit asserts 90% training accuracy.
    work = tmp_path / "assignments" / "convnets"
    work.mkdir(parents=True)
    nb = load("ConvolutionalNetworks.ipynb")
    code = [c for c in nb.cells if c.cell_type == "code"]
    keep = [next(c for c in code if "%autoreload" in c.source)]
    keep += [c for c in code if "parameters" in c.metadata.get("tags", [])]
    keep += [c for c in code if 'get_data("auto")' in c.source]
    keep += [c for c in code if "import ThreeLayerConvNet" in c.source]
    keep += [c for c in code if "num_epochs=OVERFIT_EPOCHS" in c.source]
    keep += [c for c in code if c.metadata.get("nbgrader", {}).get("grade_id") == "task2_8_overfit"]
    assert len(keep) == 6, "the setup, parameters, data, import, overfit and task2_8_overfit cells must exist"
    keep.append(nbformat.v4.new_code_cell(
        "assert (SPEED_N, IMAGE_SIZE, OVERFIT_EPOCHS) == (4, 50, 20) and solver.num_epochs == 20\n"))
    # autoreload is off in a grading run: a module edited on disk is not reloaded before a cell
    keep.append(nbformat.v4.new_code_cell(
        "import importlib, pathlib, time\n"
        "pathlib.Path('probe_mod.py').write_text('V = 1\\n')\n"
        "sys.path.insert(0, str(pathlib.Path.cwd()))\n"
        "probe_mod = importlib.import_module('probe_mod')\n"))
    keep.append(nbformat.v4.new_code_cell("time.sleep(1.1)\npathlib.Path('probe_mod.py').write_text('V = 2\\n')\n"))
    keep.append(nbformat.v4.new_code_cell("assert probe_mod.V == 1, 'autoreload reloaded a module in a grading run'\n"))
    nb.cells = keep
    _execute_as_grading_run(nb, work, tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for o in keep[5].outputs)
    assert "training accuracy on 100 examples after 20 epochs" in printed, printed


@pytest.mark.slow
def test_grading_run_of_the_pytorch_notebook_loads_the_challenge_and_trains_a_few_batches(tmp_path, monkeypatch):
    # Under the autograder (CS_LAYERS_GRADING=1, cs_layers.grading_run) the challenge cell loads
    # the submitted challenge_model.pt (never overwritten), and every demonstration training runs
    # grading_run.DEMO_BATCHES batches per epoch; the notebook still runs top to bottom.
    import torch

    from cs_layers import grading_run, torch_nets

    work = tmp_path / "assignments" / "convnets"
    work.mkdir(parents=True)
    torch.manual_seed(0)
    torch_nets.save_challenge(torch_nets.challenge_model("patterns"), "patterns", work / "challenge_model.pt")
    submitted = (work / "challenge_model.pt").read_bytes()
    nb = load("PyTorch.ipynb")
    nb.cells.append(nbformat.v4.new_code_cell(
        f"assert challenge_history == {{'loss': [], 'val_acc': []}}, 'the grading run trained the challenge'\n"
        f"assert len(history['loss']) == {grading_run.DEMO_BATCHES} * len(history['val_acc']), history\n"))
    _execute_as_grading_run(nb, work, tmp_path, monkeypatch)
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "grading run: loaded the submitted challenge_model.pt" in printed, printed[-3000:]
    assert (work / "challenge_model.pt").read_bytes() == submitted, "the grading run overwrote the submission"
