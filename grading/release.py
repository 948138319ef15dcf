"""Build the student release: `python -m grading release OUTDIR [--force]`.

Steps, all into a temporary folder next to OUTDIR that is renamed at the end
(so a failed build leaves nothing half-written):
1. `cs_layers/*.py` with every solution region replaced by its stub;
2. the release notebooks from nbgrader's `generate_assignment` (run in a
   temporary course folder with the course's nbgrader_config.py), plus
   `assignments/convnets/.release_manifest.json` listing their nbgrader cells,
   which `python -m cs_layers.submit` uses to notice deleted cells;
3. the public tests, project files, embedded datasets, the task list, and
   docs/student_README.md as README.md;
4. the leak check over every file (grading/leakcheck.py). Any leak fails the build.

Only files on leakcheck's allow-list are copied (`cs_layers/<module>.py`, and
known text/data types elsewhere); editor backups, swap files, compiled
modules, hidden files and links are skipped and named in the log.

OUTDIR safety: an OUTDIR that equals, contains or lies inside the source tree
(after resolving links), the filesystem root, a top-level folder or the home
folder (or one above it) and an existing top-level folder (/tmp, /usr, ...) are
refused whatever the flags. The release carries a
marker file (RELEASE_MARK); `--force` replaces only a folder that holds it, i.e.
one an earlier build made, never anything else.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cs_layers import course, notebook_cells
from grading import leakcheck, markers

ASSIGNMENT = course.ASSIGNMENT
REPO_ROOT = Path(__file__).resolve().parent.parent
MANIFEST = f"assignments/{ASSIGNMENT}/.release_manifest.json"
# (source, destination) copied as they are; every one must exist.
PLAIN_FILES = [
    ("pyproject.toml", "pyproject.toml"),
    ("requirements.txt", "requirements.txt"),
    ("setup_gpu.sh", "setup_gpu.sh"),
    ("docs/tasks.md", "docs/tasks.md"),
    ("docs/student_README.md", "README.md"),
    ("tests/conftest.py", "tests/conftest.py"),   # the deterministic hypothesis profile of the public checks
]
OPTIONAL_FILES = [(".gitignore", ".gitignore")]
# Folders never copied (the leak check also refuses them if they slip through).
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis", "cifar-10-batches-py"}
RELEASE_MARK = leakcheck.RELEASE_MARK   # written into every release; --force replaces only such a folder


class ReleaseError(RuntimeError):
    """The release cannot be built; the message says what to fix."""


def _stub_package(src, dst, log):
    """Stub every module `cs_layers/<name>.py`; anything else there is skipped (and named)."""
    dst.mkdir(parents=True)
    count, skipped = 0, []
    for f in sorted(src.iterdir()):
        rel = f"cs_layers/{f.name}"
        if f.is_symlink() or not f.is_file() or not leakcheck.is_release_module(rel):
            if f.name != "__pycache__":
                skipped.append(f.name)
            continue
        text, regions = markers.strip_solutions(f.read_text(encoding="utf-8"), rel)
        (dst / f.name).write_text(text, encoding="utf-8")
        count += len(regions)
    if skipped:
        log(f"cs_layers: not copied (only <module>.py files ship): {', '.join(skipped)}")
    return count


def _nbgrader(course, *args):
    cmd = [sys.executable, "-m", "nbgrader", *args, "--CourseDirectory.root=" + str(course)]
    # nbgrader runs `alembic` from PATH: put this interpreter's bin folder first (venv not activated).
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run(cmd, cwd=course, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise ReleaseError(f"nbgrader {' '.join(args)} failed (exit {proc.returncode}):\n"
                           f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}\n"
                           "Fix what the log names (usually a source notebook cell).")
    return proc


def generate_notebooks(source_root, dst):
    """Release notebooks of assignments/convnets via nbgrader generate_assignment; returns their names."""
    notebooks = sorted((source_root / "assignments" / ASSIGNMENT).glob("*.ipynb"))
    if not notebooks:
        raise ReleaseError(f"no source notebooks in {source_root}/assignments/{ASSIGNMENT}; "
                           f"add the nbgrader source notebooks before building a release.")
    config = source_root / "nbgrader_config.py"
    if not config.is_file():
        raise ReleaseError(f"{config} is missing; the build needs the course's nbgrader configuration.")
    with tempfile.TemporaryDirectory(prefix="nbgrader-course-") as tmp:
        course = Path(tmp)
        shutil.copy2(config, course / "nbgrader_config.py")
        (course / "assignments" / ASSIGNMENT).mkdir(parents=True)
        for nb in notebooks:
            shutil.copy2(nb, course / "assignments" / ASSIGNMENT / nb.name)
        _nbgrader(course, "generate_assignment", ASSIGNMENT, "--force")
        made = course / "release" / ASSIGNMENT
        dst.mkdir(parents=True, exist_ok=True)
        for nb in notebooks:
            if not (made / nb.name).is_file():
                raise ReleaseError(f"nbgrader did not produce {nb.name}; see its log above.")
            shutil.copy2(made / nb.name, dst / nb.name)
    return [nb.name for nb in notebooks]


def cell_manifest(nb_path):
    """The nbgrader cells of a release notebook: grade_id -> flags (+ checksum of read-only cells)."""
    return notebook_cells.manifest(json.loads(Path(nb_path).read_text(encoding="utf-8")))


def _copy(src, dst, rel, log):
    """Copy a file, or a folder's allow-listed files (no links, no hidden or skipped folders)."""
    if src.is_symlink():
        log(f"not copied (a link): {rel}")
        return
    if src.is_file():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst)
        return
    skipped = []
    for f in sorted(src.rglob("*")):
        sub = f.relative_to(src)
        if set(sub.parts) & SKIP_DIRS:
            continue
        if f.is_symlink() or (f.is_file() and not leakcheck.allowed_in_release(f"{rel}/{sub.as_posix()}")) \
                or any(p.startswith(".") for p in sub.parts):
            skipped.append(sub.as_posix())
        elif f.is_file():
            (dst / sub).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, dst / sub)
    if skipped:
        log(f"{rel}: not copied (links, hidden files or file types a release does not ship): {', '.join(skipped)}")


def _obvious_roots():
    home = Path.home().resolve()
    return {Path("/"), home, *home.parents}


def check_outdir(outdir, source_root, force):
    """Refuse an OUTDIR whose replacement could destroy anything but an earlier release."""
    suggestion = source_root.parent / f"{source_root.name}-release"
    if outdir in _obvious_roots() or (len(outdir.parts) <= 2 and outdir.exists()):
        raise ReleaseError(f"refusing to build into {outdir}: it is the filesystem root, an existing "
                           "top-level folder or your home folder (or above it). "
                           f"Choose a new folder, e.g. {suggestion}.")
    if outdir == source_root or source_root in outdir.parents or outdir in source_root.parents:
        how = "is" if outdir == source_root else "lies inside" if source_root in outdir.parents else "contains"
        raise ReleaseError(f"refusing to build into {outdir}: it {how} the source tree {source_root}, which "
                           f"holds the solutions. Choose a folder outside it, e.g. {suggestion}.")
    if outdir.exists() and not outdir.is_dir():
        raise ReleaseError(f"{outdir} exists and is not a folder; choose another OUTDIR.")
    if outdir.is_dir() and any(outdir.iterdir()):
        if not (outdir / RELEASE_MARK).is_file() or (outdir / RELEASE_MARK).is_symlink():
            raise ReleaseError(f"{outdir} is not empty and was not made by a release build (no {RELEASE_MARK}); "
                               f"it is left alone{' even with --force' if force else ''}. Choose an empty or "
                               f"new OUTDIR.")
        if not force:
            raise ReleaseError(f"{outdir} is not empty (an earlier release); pass --force to replace it, "
                               f"or choose an empty OUTDIR.")


def build(outdir, source_root=REPO_ROOT, force=False, log=print):
    """Build the release into `outdir`; returns the number of solution regions stubbed."""
    source_root, outdir = Path(source_root).resolve(), Path(os.path.abspath(outdir)).resolve()
    check_outdir(outdir, source_root, force)
    missing = [s for s, _ in PLAIN_FILES if not (source_root / s).is_file()]
    missing += [d for d in ("cs_layers", "tests/public", "datasets") if not (source_root / d).is_dir()]
    if missing:
        raise ReleaseError(f"the source tree {source_root} lacks {', '.join(missing)}; "
                           f"add them (or run from the instructor repository) and build again.")
    outdir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.building-", dir=outdir.parent))
    try:
        leakcheck.collect_secrets(source_root)   # marker typos fail here, before the slow steps
        n = _stub_package(source_root / "cs_layers", tmp / "cs_layers", log)
        log(f"cs_layers: {n} solution regions replaced by stubs")
        nb_dir = tmp / "assignments" / ASSIGNMENT
        names = generate_notebooks(source_root, nb_dir)
        manifest = {name: cell_manifest(nb_dir / name) for name in names}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        log(f"notebooks: {', '.join(names)} generated by nbgrader")
        _copy(source_root / "tests" / "public", tmp / "tests" / "public", "tests/public", log)
        _copy(source_root / "datasets", tmp / "datasets", "datasets", log)
        for s, d in PLAIN_FILES + [f for f in OPTIONAL_FILES if (source_root / f[0]).is_file()]:
            _copy(source_root / s, tmp / d, d, log)
        (tmp / RELEASE_MARK).write_text(json.dumps({"made_by": "python -m grading release"}) + "\n",
                                        encoding="utf-8")
        n_secrets = leakcheck.check_release(tmp, source_root, label=f"for {outdir}")
        log(f"leak check: {n_secrets} solution lines searched for in every file; none found")
        check_outdir(outdir, source_root, force)   # again, just before replacing anything
        if outdir.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{outdir.name}.old-", dir=outdir.parent))
            os.replace(outdir, old / "tree")
            shutil.rmtree(old)
        os.chmod(tmp, 0o755)   # mkdtemp makes it private; a release is an ordinary folder
        os.replace(tmp, outdir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"release written to {outdir}")
    return n


def main(argv=None):
    import argparse
    parser = argparse.ArgumentParser(prog="python -m grading release",
                                     description="Build the student release (stubs, release notebooks, "
                                                 "public tests) and leak-check it.")
    parser.add_argument("outdir", help="folder to create, outside the source tree; must be empty unless --force")
    parser.add_argument("--force", action="store_true",
                        help=f"replace OUTDIR if an earlier release build made it (it holds {RELEASE_MARK})")
    parser.add_argument("--source", default=str(REPO_ROOT), help="instructor tree (default: this repository)")
    args = parser.parse_args(argv)
    try:
        build(args.outdir, args.source, force=args.force)
    except (ReleaseError, markers.MarkerError, leakcheck.LeakError) as e:
        print(f"release build FAILED: {e}", file=sys.stderr)
        return 1
    return 0
