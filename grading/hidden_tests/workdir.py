"""The worker's folder for one student: the submission, the hidden inputs, the worker itself.

    WORKDIR/pkg/cs_layers/   the submission's whitelisted .py files (regular files only), 0555
    WORKDIR/inputs/          <case>_<name>.npy of every case, 0444 in a 0555 folder
    WORKDIR/reference/       the instructor's copies of worker.REFERENCE_MODULES, 0444
    WORKDIR/worker.py, probes.py, torch_probes.py   0444
    WORKDIR/outputs/status/  root-owned, world-writable, sticky: the only place the worker writes

Grader side; the sandbox mounts WORKDIR and the worker runs there (grading/worker.py).
"""
from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import numpy as np

import cs_layers
from cs_layers import course
from grading import worker


def copy_submission(student_dir: Path, pkg: Path) -> set[str]:
    """Copy only the expected cs_layers/*.py names (regular files); returns the module names.

    A given module (no student region: course.py, shapes.py, ...) that the submission lacks is
    taken from the instructor's copy, so a partial submission still imports; a missing student
    module stays missing and its tasks are graded as such.
    """
    src = student_dir / "cs_layers" if (student_dir / "cs_layers").is_dir() else student_dir
    reference = Path(cs_layers.__file__).parent
    allowed = sorted(p.name for p in reference.glob("*.py"))
    student_modules = {f"{t.file}.py" for t in course.TASKS if t.file}
    pkg.mkdir(parents=True)
    present = set()
    for name in allowed:
        f = src / name
        try:
            st = os.lstat(f)
        except OSError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue  # links and folders are never followed
        shutil.copyfile(f, pkg / name, follow_symlinks=False)
        os.chmod(pkg / name, 0o444)
        present.add(name[:-3])
    for name in allowed:
        if name not in student_modules and not (pkg / name).exists():
            shutil.copyfile(reference / name, pkg / name)
            os.chmod(pkg / name, 0o444)
    if not (pkg / "__init__.py").exists():
        (pkg / "__init__.py").write_text("")  # a regular package: never merged with another copy
        os.chmod(pkg / "__init__.py", 0o444)
    return present


def prepare(workdir: Path, student_dir: Path, cases) -> set[str]:
    """Fill WORKDIR for `cases` (see the module docstring); returns the submitted module names."""
    workdir = Path(workdir).resolve()
    present = copy_submission(Path(student_dir), workdir / "pkg" / "cs_layers")
    inputs = workdir / "inputs"
    inputs.mkdir()
    for case in cases:
        for name, value in case.input_files().items():
            np.save(inputs / f"{name}.npy", value, allow_pickle=False)
    here = Path(worker.__file__).parent
    code = ["worker.py"] + [f"{stem}.py" for stem in worker.PROBE_FILES]
    for name in code:
        shutil.copyfile(here / name, workdir / name)
    # The given code of every task runs on the instructor's copies of these (see worker.py).
    (workdir / "reference").mkdir()
    for name in worker.REFERENCE_MODULES:
        shutil.copyfile(Path(cs_layers.__file__).with_name(f"{name}.py"), workdir / "reference" / f"{name}.py")
        os.chmod(workdir / "reference" / f"{name}.py", 0o444)
    # Root-owned, world-writable, sticky: the sandbox user can add files but cannot remove,
    # rename or swap the folders (or the files of an earlier run) for links.
    (workdir / "outputs" / "status").mkdir(parents=True)
    for d in (workdir / "outputs", workdir / "outputs" / "status"):
        os.chmod(d, 0o1777)
    for p in (*(workdir / name for name in code), *inputs.iterdir()):
        os.chmod(p, 0o444)
    for d in (inputs, workdir / "pkg", workdir / "pkg" / "cs_layers", workdir / "reference"):
        os.chmod(d, 0o555)
    return present


def site_packages() -> list[str]:
    """Where the worker finds numpy (and torch): added by hand, since it runs with -S."""
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    return list(dict.fromkeys(os.path.realpath(p) for p in paths))
