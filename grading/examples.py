"""Example submissions, generated from the instructor's `cs_layers` by small source patches.

No copy of the solutions is committed: each example is the reference package copied into a
temporary folder, with a patch appended to one module (appending rebinds a function after
the reference defines it, so the patch does not depend on how the reference is written).

    python -m grading.examples DEST          # DEST/{correct,partly_wrong,hostile}/
    python -m grading autograde DEST --out out/demo

`make demo` can run these two lines to show a graded class.
"""
from __future__ import annotations

import argparse
import ast
import shutil
import sys
import textwrap
from pathlib import Path

from cs_layers import course
from grading import unpack

REPO_ROOT = Path(__file__).resolve().parent.parent
REFERENCE = REPO_ROOT / "cs_layers"
MODEL_FILE = unpack.MODEL_FILE
CHALLENGE_FILE = unpack.CHALLENGE_FILE  # task3_5 (torch_nets.save_challenge)
NOTEBOOK_DIR = course.NOTEBOOK_DIR
NOTEBOOKS = tuple(f"{name}.ipynb" for name in course.NOTEBOOKS)


def copy_reference(dest: Path, *, reference: Path = REFERENCE) -> Path:
    """dest/cs_layers/*.py = the instructor's package files (caches and data left out)."""
    pkg = Path(dest) / "cs_layers"
    pkg.mkdir(parents=True, exist_ok=True)
    for src in sorted(Path(reference).glob("*.py")):
        shutil.copyfile(src, pkg / src.name)
    return Path(dest)


def append_patch(sub: Path, module: str, code: str) -> None:
    """Append top-level `code` to sub/cs_layers/<module>."""
    path = Path(sub) / "cs_layers" / module
    path.write_text(path.read_text() + "\n\n# --- patched for an example submission ---\n"
                    + textwrap.dedent(code).strip() + "\n")


def wrap(func: str, body: str) -> str:
    """Code that replaces `func` by a function running `body`; `_orig(*args, **kwargs)` is the reference."""
    return (f"_orig_{func} = {func}\n\n\n"
            f"def {func}(*args, **kwargs):\n"
            f"    _orig = _orig_{func}\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n")


def task_modules() -> dict[str, str]:
    """task id -> the file it lives in (the course table's `file`), for tasks with a module file."""
    return {t.id: f"{t.file}.py" for t in course.TASKS if t.file}


def _package_imports(tree: ast.AST) -> set[str]:
    """Names of cs_layers modules that a module's AST imports."""
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # from .layers import x / from . import layers
                mods |= {node.module} if node.module else {a.name for a in node.names}
            elif node.module == "cs_layers":
                mods |= {a.name for a in node.names}
            elif node.module and node.module.startswith("cs_layers."):
                mods.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            mods |= {a.name.split(".")[1] for a in node.names if a.name.startswith("cs_layers.")}
    return mods


def importers(module: str, reference: Path = REFERENCE) -> set[str]:
    """File names of the package that are `module` or import it, directly or not."""
    graph = {p.name: {f"{m}.py" for m in _package_imports(ast.parse(p.read_text()))}
             for p in Path(reference).glob("*.py")}
    hit = {module}
    changed = True
    while changed:
        changed = False
        for name, deps in graph.items():
            if name not in hit and deps & hit:
                hit.add(name)
                changed = True
    return hit


def train_model(path: Path, *, epochs: int = 4, seed: int = 0, verbose: bool = False) -> float:
    """Train a small reference ThreeLayerConvNet on the digits and save it; returns val accuracy."""
    import numpy as np

    from cs_layers.cnn import ThreeLayerConvNet, save_model
    from cs_layers.data import get_data
    from cs_layers.solver import Solver

    np.random.seed(seed)
    data = get_data("digits")
    model = ThreeLayerConvNet(input_dim=data["X_train"].shape[1:], num_filters=8, filter_size=3,
                              hidden_dim=64, weight_scale=1e-2, reg=1e-4)
    solver = Solver(model, {k: data[k] for k in ("X_train", "y_train", "X_val", "y_val")},
                    update_rule="adam", optim_config={"learning_rate": 2e-3}, batch_size=50,
                    num_epochs=epochs, verbose=verbose, print_every=10**9)
    solver.train()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    save_model(path, model, dataset="digits")
    return float(solver.best_val_acc)


def train_challenge(path: Path, *, epochs: int = 3, seed: int = 0) -> float:
    """Train the reference challenge model on the default data and save it; returns test accuracy.

    The default data, as a student's notebook trains it: the grading run of the PyTorch
    notebook checks that the saved model was trained on the data the notebook loads. It
    trains on one torch thread, so the weights (and the accuracy the feedback shows, kept in
    tests/golden_record.json) are the same on a machine with any number of cores."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from cs_layers import torch_nets
    from cs_layers.data import get_data

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        data = get_data()
        std = float(data["X_train"].std())
        X, y = torch_nets.image_tensors(data["X_train"], std), torch.from_numpy(data["y_train"])
        model = torch_nets.challenge_model(data["name"])
        opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
        for _ in range(epochs):
            model.train()
            for idx in torch.randperm(len(X)).split(64):
                loss = F.cross_entropy(model(X[idx]), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.inference_mode():
            pred = model(torch_nets.image_tensors(data["X_test"], std)).argmax(1).numpy()
    finally:
        torch.set_num_threads(threads)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    torch_nets.save_challenge(model, data["name"], path)
    return float(np.mean(pred == data["y_test"]))


def copy_notebooks(sub: Path, *, drop_grade_cell: str | None = None) -> None:
    """sub/assignments/convnets/*.ipynb = the source notebooks (their answers filled in, as a
    finished student's would be); `drop_grade_cell` deletes that grade cell, as an edited
    submission might."""
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(REPO_ROOT / NOTEBOOK_DIR / name, as_version=4)
        if drop_grade_cell:
            nb.cells = [c for c in nb.cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") != drop_grade_cell]
        nbformat.write(nb, Path(sub) / NOTEBOOK_DIR / name)


def make_examples(dest: Path, *, model: Path | None = None,
                  challenge: Path | None = None) -> dict[str, Path]:
    """DEST/correct (with both notebooks), DEST/partly_wrong (wrong conv backward db, NaN in
    groupnorm, a conv parameter count without the biases: only task2_0 loses points for it,
    since later tasks are graded on the reference geometry; no notebooks), DEST/hostile (fakes
    numpy, zeros from conv forward, a numpy.py, notebooks with a deleted grade cell).

    `model`: a trained checkpoint to include (trained here when None); `challenge`: trained
    challenge weights (task3_5) to include (trained here when None).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    if model is None:
        model = dest / ".model.npz"
        acc = train_model(model)
        print(f"trained the example model: validation accuracy {acc:.3f}")
    if challenge is None:
        challenge = dest / ".challenge_model.pt"
        acc = train_challenge(challenge)
        print(f"trained the example challenge model: test accuracy {acc:.3f} on the default data")
    subs = {}
    for name in ("correct", "partly_wrong", "hostile"):
        sub = copy_reference(dest / name)
        (sub / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model, sub / MODEL_FILE)
        shutil.copyfile(challenge, sub / CHALLENGE_FILE)
        subs[name] = sub
    append_patch(subs["partly_wrong"], "layers.py", wrap("conv_backward_naive", """
        dx, dw, db = _orig(*args, **kwargs)
        return dx, dw, -db
    """))
    append_patch(subs["partly_wrong"], "geometry.py", wrap("conv_param_count", """
        return _orig(*args, **kwargs) - args[1]   # forgets the one bias per filter
    """))
    append_patch(subs["partly_wrong"], "layers.py", wrap("spatial_groupnorm_forward", """
        out, cache = _orig(*args, **kwargs)
        out = out.copy()
        out.flat[0] = float("nan")
        return out, cache
    """))
    # Hostile: fakes numpy's comparisons in the grader (has no effect: verdicts are computed in
    # the grader process) and returns zeros from the naive conv forward.
    append_patch(subs["hostile"], "layers.py", textwrap.dedent("""
        import numpy as _np
        _np.allclose = lambda *a, **k: True
        _np.testing.assert_allclose = lambda *a, **k: None
    """) + "\n" + wrap("conv_forward_naive", """
        out, cache = _orig(*args, **kwargs)
        return _np.zeros_like(out), cache
    """))
    (subs["hostile"] / "numpy.py").write_text("raise SystemExit('a submitted numpy.py ran')\n")
    copy_notebooks(subs["correct"])
    copy_notebooks(subs["hostile"], drop_grade_cell="task2_3")
    return subs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grading.examples",
                                     description="Generate example submissions for the demo.")
    parser.add_argument("dest", type=Path, help="folder to create the submissions in")
    args = parser.parse_args(argv)
    if args.dest.exists() and any(args.dest.iterdir()):
        parser.error(f"{args.dest} is not empty; remove it or choose another folder")
    subs = make_examples(args.dest)
    for name, path in subs.items():
        print(f"{name:<13} {path}")
    print(f"grade them with: python -m grading autograde {args.dest} --out out/demo")
    return 0


if __name__ == "__main__":
    sys.exit(main())
