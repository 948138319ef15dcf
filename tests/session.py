"""Expensive artefacts made once per test session and shared by the test files that inspect them.

A session-scoped fixture defined in one test module is private to that module, and
tests/conftest.py ships with the student release (so it cannot import the grader). The
test modules therefore define thin fixtures that call `once`, which builds each artefact
the first time a session asks for it and hands back the same object afterwards:

- `release_tree`: the student release of this tree (nbgrader generate_assignment runs once);
- `trained_models`: the reference checkpoint and challenge weights the corpus submits;
- `seed_template`: the nbgrader template of the source notebooks (grading.notebooks.get_template
  runs `nbgrader generate_assignment`), built once and copied into each autograde --out folder
  that a test grades into, where the grader finds it instead of building it again;
- `student_walk`: the student path from the release (tests/student_path.py): the only
  headless execution of the notebooks with the reference solutions, and their grading.

Treat what they return as read-only: copy a tree before changing it.

"Once per session" holds across pytest-xdist workers too: an artefact is made in a folder
that every worker of the run shares (the parent of the worker's basetemp), under a file lock,
and the first worker that asks makes it while the others wait for it and then load its
pickled result. `make test` therefore builds the release, the template and the models and
walks the student path once, whichever workers run the files that use them.
"""
from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_made: dict[tuple[str, str], object] = {}


def shared_dir(tmp_path_factory) -> Path:
    """The folder every process of this test run shares: the run's basetemp, also under xdist."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(tmp_path_factory, name: str, make):
    """make(folder) the first time this run asks for `name` (in any xdist worker); the same result after that."""
    shared = shared_dir(tmp_path_factory)
    key = (str(shared), name)
    if key not in _made:
        folder, done = shared / f"session-{name}", shared / f"session-{name}.pickle"
        with open(shared / f"session-{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another worker may be making it right now
            if done.is_file():
                _made[key] = pickle.loads(done.read_bytes())
            else:
                shutil.rmtree(folder, ignore_errors=True)  # what a failed attempt left
                folder.mkdir()
                result = make(folder)
                done.write_bytes(pickle.dumps(result))
                _made[key] = result
    return _made[key]


def release_tree(tmp_path_factory) -> Path:
    """The student release of this tree, built once per session (do not modify it)."""
    def make(folder):
        from grading import release
        out = folder / "release"
        release.build(out, ROOT, log=lambda *a: None)
        return out
    return once(tmp_path_factory, "release", make)


def trained_models(tmp_path_factory) -> types.SimpleNamespace:
    """A trained reference checkpoint (model) and challenge weights (challenge), once per session."""
    def make(folder):
        from cs_layers.torch_nets import load_challenge
        from grading.examples import train_challenge, train_model
        from grading.torch_cases import CHALLENGE_TARGETS
        model = folder / "model.npz"
        acc = train_model(model, epochs=2)
        assert acc > 0.9, f"the corpus model trained to only {acc:.3f}; raise epochs in train_model"
        challenge = folder / "challenge_model.pt"
        acc = train_challenge(challenge, epochs=3)  # on the default data, as a student's notebook trains it
        # the corpus expects full points on task3_5: a margin over the grader's full-points accuracy
        target = CHALLENGE_TARGETS[load_challenge(challenge)[1]] + 0.02
        assert acc >= target, f"the corpus challenge model reached only {acc:.3f} (< {target:.2f}); raise its epochs"
        return types.SimpleNamespace(model=model, challenge=challenge)
    return once(tmp_path_factory, "models", make)


def seed_template(tmp_path_factory, out: Path) -> None:
    """Copy the session's nbgrader template to OUT/.nbgrader_template (autograde's cache there)."""
    def make(folder):
        from grading import notebooks
        return notebooks.get_template(folder).root
    root = once(tmp_path_factory, "nbgrader-template", make)
    (out / ".nbgrader_template").mkdir(parents=True, mode=0o700)
    shutil.copytree(root, out / ".nbgrader_template" / root.name, symlinks=True)


def student_walk(tmp_path_factory) -> types.SimpleNamespace:
    """The student path from the release (tests/student_path.py), walked once per session."""
    def make(folder):
        from student_path import walk
        seed_template(tmp_path_factory, folder / "grades")
        return walk(folder, release_tree(tmp_path_factory))
    return once(tmp_path_factory, "student", make)
