"""Autograde a submission's notebooks with nbgrader, inside the sandbox.

Trust level, said plainly: nbgrader's grade cells run in the STUDENT'S kernel, next to
the student's own code, so a determined student can make them pass (or edit the private
gradebook the sandboxed nbgrader writes). The notebook scores are therefore advisory; the
tamper-proof verdict on the module is the hidden tests (grading/hidden_tests/), and
task2_9 is graded from the checkpoint by hidden_tests.grade_model. What this module does
guarantee: the kernel runs in the sandbox (it sees no instructor tree, hidden tests,
gradebook or other submission), a crash or timeout is never exported as a plain zero, and
edited or deleted grade/locked cells are caught before anything runs.

Per student (grade_notebooks):
1. read each .ipynb as data (nbformat), reject it if it does not parse or if a grade or
   locked cell of the release is missing, duplicated or edited (cs_layers.notebook_cells);
2. build one private course folder in the work folder for the notebooks that passed:
       nbgrader_config.py          the course's config (exclude_overwriting included)
       gradebook.db                a copy of the template's: assignment + cells, no student
       assignments/convnets/       given cs_layers files + embedded datasets (no solutions)
       submitted/<sid>/convnets/   the notebooks, the student's cs_layers/*.py, the models
3. run `python -I -m nbgrader autograde convnets --student <sid>` ONCE for them with
   run_sandboxed (one nbgrader start-up per student; each notebook still gets its own
   kernel; CS_LAYERS_FAST=1; CS_LAYERS_GRADING=1, so the notebooks load the submitted
   checkpoint and challenge model instead of retraining what the hidden tests grade;
   KERNEL_CONFIG: figures recorded as text, not drawn; kernel over ipc sockets: the
   network namespace has no usable loopback). If that run
   does not end "ok", each of its notebooks is run again on its own (`--notebook <nb>`,
   while the submission's budget lasts), so one broken notebook is not blamed on the other;
4. copy the private gradebook out and read the scores back with nbgrader's Gradebook API
   as untrusted data: types checked, points taken from the trusted template, scores
   clamped to [0, points];
5. record them in the course gradebook (grading/gradebook.py) when `course_out` is given.

The template (nbgrader generate_assignment over the source notebooks, run once in the
grader process; its gradebook holds the release cells, without solutions) is cached in
`course_out/.nbgrader_template/<hash>/`, built under a lock so parallel jobs share it.

Result names (TaskResult.task):
    nb:<task>          the autograded grade cells of <task> (e.g. nb:task2_4 = task2_4_forward
                       + task2_4_backward); passed when every cell got its points. Tasks
                       the hidden tests grade count 0 points here (advisory only), the
                       PyTorch tasks (task3_*, graded by grading.torch_cases) included
    nb:<task>:manual   the manually graded answers of <task> (task2_12, task3_5), status
                       "pending" and 0 of their points until graded in nbgrader's formgrader
                       (`python -m grading collect-manual OUT` then brings the scores in)
task2_9's notebook cell is not reported here (its grade comes from the checkpoint), but it
is recorded in the gradebook like every other cell. Every student gets the same rows with
the same max_score (task_layout), whatever was submitted.

Advisory cells (`advisory`): the automatic checks of a task that hidden_tests.TASK_POINTS
grades (the hidden tests or the checkpoint). They carry 0 points here AND in the course
gradebook, so nbgrader's totals and grades.csv's notebook rows agree.
"""
from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import logging
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from cs_layers import course, notebook_cells
from grading import hidden_tests, markers, safeio
from grading.results import TaskResult
from grading.sandbox import Limits, RunResult, run_sandboxed

log = logging.getLogger(__name__)

ASSIGNMENT = course.ASSIGNMENT
REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = course.NOTEBOOKS  # assignments/convnets/<name>.ipynb
MODEL_FILE = course.MODEL_FILE
MODEL_GRADED = frozenset({hidden_tests.MODEL_TASK})  # graded from the checkpoint by hidden_tests.grade_model
CHALLENGE_FILE = course.CHALLENGE_FILE  # task3_5: the PyTorch notebook loads it under the grader
TASK_OF = re.compile(r"^(task\d+_\d+)")
STUDENT_ID = course.STUDENT_ID

# Per notebook (a run of both may take twice wall_s), CS_LAYERS_FAST=1. Measured on the busy
# 2-core dev machine (load 7-9) when each notebook had its own run: ConvolutionalNetworks
# 78 s wall, PyTorch 101 s wall (kernel start and torch import included); the pair used about
# 55 s CPU. The limits leave room for a loaded grader.
NOTEBOOK_LIMITS = Limits(
    cpu_s=300,        # per process (nbgrader, the kernel)
    wall_s=420.0,     # the whole nbgrader run, kernel start included
    memory_mb=8192,   # RLIMIT_AS: importing torch maps a few GiB of address space
    nproc=128,        # kernel + zmq + torch threads of the sandbox uid
    fsize_mb=64,
    output_kb=16,
)
CELL_TIMEOUT_S = 240  # nbgrader Execute.timeout: one cell (training cells are the longest)
MAX_DB_BYTES = 16 << 20  # a private gradebook larger than this is refused as tampered
RUN_FAILED = ("timeout", "memory", "error")  # Outcome statuses of a run that did not end "ok"
# The grading kernels' IPython config (IPYTHONDIR is the course folder's .ipython): a figure is
# recorded as its text stand-in ("<Figure size 1100x350 with 2 Axes>"), not drawn. Drawing the
# figures was about a sixth of the kernels' CPU; the checks and the written answers, which are
# what the record is for, do not need the pictures.
KERNEL_CONFIG = "c.InlineBackend.figure_formats = set()\n"




# ---------------------------------------------------------------- the template (grader side)

@dataclass(frozen=True)
class Cell:
    """One nbgrader cell of the release notebook (trusted: from the instructor's source)."""
    grade_id: str
    points: float
    grade: bool
    solution: bool
    locked: bool
    checksum: str  # nbgrader's, for the gradebook
    entry: dict = field(default_factory=dict, compare=False)  # cs_layers.notebook_cells.entry

    @property
    def manual(self) -> bool:  # an answer the instructor grades by hand
        return self.grade and self.solution

    @property
    def checked(self) -> bool:  # the student may not change it
        return self.locked or (self.grade and not self.solution)


@dataclass(frozen=True)
class Template:
    root: Path  # holds gradebook.db, nbgrader_config.py, assignments/convnets/ (no solutions)
    cells: dict  # notebook name -> {grade_id: Cell}, in notebook order
    course_id: str  # CourseDirectory.course_id of the course config

    @property
    def db(self) -> Path:
        return self.root / "gradebook.db"


def _nbgrader_env() -> dict[str, str]:
    # nbgrader may run `alembic` from PATH: this interpreter's bin folder first.
    return dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                  os.environ.get("PATH", "")]))


def _given_modules(source_root: Path) -> list[Path]:
    """cs_layers/*.py without solution regions (shapes.py, data.py, ...): safe to ship."""
    given = []
    for f in sorted((source_root / "cs_layers").glob("*.py")):
        if not markers.parse_regions(f.read_text(encoding="utf-8"), str(f)):
            given.append(f)
    return given


def _embedded_data(source_root: Path) -> list[Path]:
    """The embedded dataset files (never a CIFAR-10 download: it is large and not needed)."""
    root = source_root / "datasets"
    return [p for p in sorted(root.rglob("*")) if p.is_file()
            and "cifar-10" not in str(p.relative_to(root)) and p.suffix not in (".gz", ".part", ".tmp")]


def _template_key(source_root: Path) -> str:
    h = hashlib.sha256()
    src = source_root / "assignments" / ASSIGNMENT
    files = [source_root / "nbgrader_config.py", *sorted(src.glob("*.ipynb")),
             *_given_modules(source_root), *_embedded_data(source_root)]
    for f in files:
        h.update(str(f.relative_to(source_root)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def read_cells(nb_path: Path) -> dict:
    """{grade_id: Cell} of a notebook's nbgrader cells (points, kind, lock, checksum)."""
    import nbformat
    from nbgrader import utils

    cells = {}
    for cell in nbformat.read(nb_path, as_version=4).cells:
        meta = cell.metadata.get("nbgrader", {})
        if "grade_id" not in meta:
            continue
        cells[meta["grade_id"]] = Cell(
            grade_id=meta["grade_id"], points=float(meta.get("points", 0) or 0),
            grade=utils.is_grade(cell), solution=utils.is_solution(cell),
            locked=utils.is_locked(cell), checksum=utils.compute_checksum(cell),
            entry=notebook_cells.entry(cell))
    return cells


def build_template(dest: Path, source_root: Path = REPO_ROOT) -> Template:
    """Run nbgrader generate_assignment over the source notebooks into `dest` (grader side).

    Keeps the gradebook (assignment, notebooks and release cells), the release notebooks'
    cell table, the course config, the given cs_layers files and the embedded datasets.
    The source notebooks (with solutions) are deleted once the release is generated.
    """
    dest.mkdir(parents=True)
    shutil.copy2(source_root / "nbgrader_config.py", dest / "nbgrader_config.py")
    src = dest / "assignments" / ASSIGNMENT
    src.mkdir(parents=True)
    for name in NOTEBOOKS:
        shutil.copy2(source_root / "assignments" / ASSIGNMENT / f"{name}.ipynb", src)
    cmd = [sys.executable, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force",
           f"--CourseDirectory.root={dest}"]
    proc = subprocess.run(cmd, cwd=dest, capture_output=True, text=True, env=_nbgrader_env())
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment failed (exit {proc.returncode}):\n"
                           f"{proc.stderr[-3000:]}\nFix the source notebook cell it names, "
                           "then grade again.")
    cells = {name: read_cells(dest / "release" / ASSIGNMENT / f"{name}.ipynb") for name in NOTEBOOKS}
    for name in NOTEBOOKS:
        (src / f"{name}.ipynb").unlink()  # no solutions stay in the template
    for f in _given_modules(source_root):
        (src / "cs_layers").mkdir(exist_ok=True)
        shutil.copy2(f, src / "cs_layers" / f.name)
    for f in _embedded_data(source_root):
        target = src / f.relative_to(source_root)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, target)
    course_id = _config_course_id(dest)
    (dest / "cells.json").write_text(json.dumps(
        {"course_id": course_id,
         "cells": {nb: [c.__dict__ for c in cs.values()] for nb, cs in cells.items()}}, indent=1))
    return Template(dest, cells, course_id)


def _config_course_id(course: Path) -> str:
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return str(cfg.CourseDirectory.get("course_id", "default_course"))


def _load_template(root: Path) -> Template:
    raw = json.loads((root / "cells.json").read_text())
    cells = {nb: {c["grade_id"]: Cell(**c) for c in cs} for nb, cs in raw["cells"].items()}
    return Template(root, cells, raw["course_id"])


_TEMPLATES: dict[Path, Template] = {}


def get_template(cache_dir: Path | None = None, source_root: Path = REPO_ROOT) -> Template:
    """The template for the current source notebooks, built once and shared across processes."""
    if cache_dir is None:
        cache_dir = Path(tempfile.gettempdir()) / f"nbgrader-template-{os.getuid()}"
    cache_dir = Path(cache_dir).resolve()
    root = cache_dir / _template_key(source_root)
    if root in _TEMPLATES:
        return _TEMPLATES[root]
    cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    with open(cache_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a parallel job may be building it right now
        if not (root / "cells.json").is_file():
            tmp = Path(tempfile.mkdtemp(dir=cache_dir, prefix=".build-"))
            try:
                build_template(tmp / "t", source_root)
                (tmp / "t").rename(root)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    _TEMPLATES[root] = _load_template(root)
    return _TEMPLATES[root]


# ---------------------------------------------------------------- one notebook

@dataclass
class Outcome:
    """What grading one notebook gave: a status for the whole run, and per-cell scores."""
    notebook: str
    status: str  # "ok", or a STATUSES name for the whole notebook
    message: str = ""
    scores: dict = field(default_factory=dict)  # grade_id -> points (None: awaits manual grading)
    duration_s: float = 0.0
    autograded: Path | None = None  # the autograded .ipynb (in the work folder), when produced
    submitted: Path | None = None  # the notebook as handed in (the staging copy), when present


def check_notebook(raw: bytes, cells: dict) -> str | None:
    """Why this notebook is rejected (parse error, deleted/duplicated/edited cell), or None."""
    import nbformat

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # nbformat's notes on duplicate cell ids, versions
            nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
    except Exception as err:  # any parse/validation problem
        return (f"the notebook does not parse as Jupyter JSON ({type(err).__name__}); open it "
                "in Jupyter, save it, and submit again (or start from a fresh release copy)")
    expected = {gid: spec.entry for gid, spec in cells.items()}
    for what, gid in notebook_cells.problems(nb, expected):
        if what == "duplicated":
            return (f"cell {gid} appears twice; delete the copy you made (keep the "
                    "release's cell) and submit again")
        if what == "deleted" and cells[gid].checked:
            return (f"grade/locked cell {gid} was deleted (or its nbgrader metadata removed); "
                    "copy it back from the release notebook and submit again")
        if what == "edited":
            return (f"grade/locked cell {gid} was edited; restore it exactly as in the release "
                    "notebook (put your own code in the cells marked YOUR CODE HERE)")
    return None


class Nbgrader:
    """The nbgrader side of grading: find the template, stage a private course folder, run
    `nbgrader autograde` in the sandbox, read the scores back. grade_notebooks takes one as
    `nbgrader=`; a test passes its own subclass to grade without running nbgrader."""

    def template(self, cache_dir: Path | None) -> Template:
        return get_template(cache_dir)

    def stage(self, course: Path, template: Template, staging: Path, sid: str, nbs) -> None:
        """Build the private course folder of one run (the notebooks `nbs` of student `sid`)."""
        shutil.copytree(template.root / "assignments", course / "assignments")
        shutil.copy2(template.root / "nbgrader_config.py", course / "nbgrader_config.py")
        shutil.copy2(template.db, course / "gradebook.db")
        sub = course / "submitted" / sid / ASSIGNMENT
        (sub / "cs_layers").mkdir(parents=True)
        for nb in nbs:  # only the notebooks that passed check_notebook
            shutil.copy2(staging / "assignments" / ASSIGNMENT / f"{nb}.ipynb", sub / f"{nb}.ipynb")
        for f in sorted((staging / "cs_layers").glob("*.py")):  # already whitelisted by unpack
            shutil.copy2(f, sub / "cs_layers" / f.name)
        for saved in (MODEL_FILE, CHALLENGE_FILE):  # the notebooks load these instead of retraining
            if (staging / "assignments" / ASSIGNMENT / saved).is_file():
                shutil.copy2(staging / "assignments" / ASSIGNMENT / saved, sub / saved)
        for d in (".tmp", ".mpl", ".ipython"):
            (course / d).mkdir()
        (course / ".ipython" / "profile_default").mkdir()
        (course / ".ipython" / "profile_default" / "ipython_kernel_config.py").write_text(KERNEL_CONFIG)

    def run(self, course: Path, sid: str, nbs, limits: Limits, fast: bool) -> RunResult:
        """`nbgrader autograde` of the staged notebooks, in the sandbox."""
        # one notebook: --notebook names it; several: nbgrader takes every staged one, in one process
        only = [f"--notebook={nbs[0]}"] if len(nbs) == 1 else []
        argv = [sys.executable, "-I", "-m", "nbgrader", "autograde", ASSIGNMENT,
                f"--student={sid}", *only, f"--CourseDirectory.root={course}",
                "--Autograde.create_student=True", f"--Execute.timeout={CELL_TIMEOUT_S}",
                # the kernel talks over abstract unix sockets: no loopback in the network namespace
                "--KernelManager.transport=ipc", f"--KernelManager.ip=@nbk-{secrets.token_hex(8)}"]
        env = {"PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin:/usr/bin:/bin"]),
               "TMPDIR": str(course / ".tmp"), "MPLCONFIGDIR": str(course / ".mpl"),
               "IPYTHONDIR": str(course / ".ipython"), "CS_LAYERS_FAST": "1" if fast else "",
               "CS_LAYERS_GRADING": "1",  # cs_layers.grading_run: load the submitted models, train a few batches
               "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
        return run_sandboxed(argv, workdir=course, limits=limits, env=env)

    def read_scores(self, course: Path, sid: str, nb: str, cells: dict,
                    course_id: str) -> tuple[dict, str]:
        """Per-cell scores from the private gradebook (untrusted); ({}, why) when unusable."""
        from nbgrader.api import Gradebook

        db = course / "gradebook.db"
        with tempfile.TemporaryDirectory(prefix="nbscores-") as tmp:
            copy = Path(tmp, "gradebook.db")
            try:  # a private copy: the sandbox can no longer touch it (never blocks on a FIFO)
                safeio.copy_bounded(db, copy, MAX_DB_BYTES)
            except safeio.Unsafe as err:
                return {}, f"the private gradebook is unusable: {err}"
            scores = {}
            try:
                with Gradebook(f"sqlite:///{copy}", course_id=course_id) as gb:
                    for gid, spec in cells.items():
                        if not spec.grade:
                            continue
                        g = gb.find_grade(gid, nb, ASSIGNMENT, sid)
                        auto = g.auto_score
                        if spec.manual:
                            scores[gid] = None
                        elif isinstance(auto, (int, float)) and not isinstance(auto, bool) \
                                and math.isfinite(auto):
                            scores[gid] = min(max(float(auto), 0.0), spec.points)
                        else:  # never executed (e.g. the run stopped): no points
                            scores[gid] = 0.0
            except Exception as err:
                return {}, f"the private gradebook could not be read ({type(err).__name__})"
        return scores, ""


NBGRADER = Nbgrader()


def grade_notebook(staging: Path, sid: str, nb: str, template: Template, *, workdir: Path,
                   limits: Limits = NOTEBOOK_LIMITS, fast: bool = True,
                   nbgrader: Nbgrader = NBGRADER) -> Outcome:
    """Autograde one notebook of one submission in the sandbox; never raises for bad input."""
    return grade_together(staging, sid, (nb,), template, workdir=workdir, limits=limits,
                          fast=fast, nbgrader=nbgrader)[0]


def grade_together(staging: Path, sid: str, nbs, template: Template, *, workdir: Path,
                   limits: Limits = NOTEBOOK_LIMITS, fast: bool = True,
                   left: float | None = None, nbgrader: Nbgrader = NBGRADER) -> list[Outcome]:
    """Autograde the notebooks `nbs` of one submission in ONE sandboxed nbgrader run.

    One nbgrader process (its start-up, about 2 s of CPU, paid once) runs each notebook in its
    own kernel, one after the other; the run may take limits.wall_s per notebook in all. A
    missing or rejected notebook gets its own Outcome and is not staged. When the run does
    not end "ok" (timeout, memory, crash), every notebook of the run gets that status: the
    run's output cannot say which notebook caused it (grade_notebooks then grades them one
    at a time, while the budget allows). `left`: seconds left of the submission's budget, the
    most the run may take. Never raises for bad input.
    """
    outcomes: dict[str, Outcome] = {}
    for nb in nbs:
        path = staging / "assignments" / ASSIGNMENT / f"{nb}.ipynb"
        if not path.is_file() or path.is_symlink():
            outcomes[nb] = Outcome(nb, "missing", f"assignments/{ASSIGNMENT}/{nb}.ipynb is not in "
                                                  "the submission; add it and submit again")
            continue
        why = check_notebook(path.read_bytes(), template.cells[nb])
        if why:
            outcomes[nb] = Outcome(nb, "rejected", f"{nb}.ipynb rejected: {why}", submitted=path)
    run = [nb for nb in nbs if nb not in outcomes]
    if run:
        course = Path(workdir).resolve() / (run[0] if len(run) == 1 else "notebooks")
        nbgrader.stage(course, template, staging, sid, run)
        wall = limits.wall_s * len(run)
        run_limits = dataclasses.replace(limits, wall_s=wall if left is None else min(wall, left))
        res = nbgrader.run(course, sid, run, run_limits, fast)
        names = ", ".join(f"{nb}.ipynb" for nb in run)
        for nb in run:
            outcomes[nb] = _outcome(nbgrader, course, sid, nb, template, res, run_limits, names,
                                    staging / "assignments" / ASSIGNMENT / f"{nb}.ipynb")
    return [outcomes[nb] for nb in nbs]


def _outcome(nbgrader: Nbgrader, course: Path, sid: str, nb: str, template: Template, res,
             limits: Limits, names: str, submitted: Path) -> Outcome:
    """One notebook's Outcome from a finished nbgrader run (`names`: the run's notebooks)."""
    if res.status != "ok":
        what = {"timeout": f"ran past the time limit ({limits.wall_s:g} s wall, "
                           f"{limits.cpu_s} s CPU); make the slow cell faster",
                "memory": f"ran past the memory limit ({limits.memory_mb} MiB)",
                "crash": f"nbgrader stopped with exit code {res.returncode} (a cell may have "
                         "killed the kernel or the process)"}[res.status]
        status = {"crash": "error"}.get(res.status, res.status)
        return Outcome(nb, status, f"{names} {what}; it is re-run from the top when "
                                   "graded, so run Kernel > Restart & Run All before submitting",
                       duration_s=res.duration_s, submitted=submitted)
    scores, why = nbgrader.read_scores(course, sid, nb, template.cells[nb], template.course_id)
    if why:
        return Outcome(nb, "error", f"{nb}.ipynb could not be scored: {why}; tell the instructor",
                       duration_s=res.duration_s, submitted=submitted)
    out = course / "autograded" / sid / ASSIGNMENT / f"{nb}.ipynb"
    inside = out.resolve().is_relative_to(course) and not out.is_symlink()  # no planted links
    return Outcome(nb, "ok", "", scores, res.duration_s, out if inside and out.is_file() else None,
                   submitted=submitted)


def _out_of_time(nb: str) -> Outcome:
    return Outcome(nb, "timeout", f"{nb}.ipynb was not run: the time budget of this submission "
                                  "ran out")


# ---------------------------------------------------------------- results per task

def advisory(spec: Cell) -> bool:
    """An automatic check worth 0 points: its task is graded by hidden_tests (TASK_POINTS).

    Follows the hidden tests: a task that gains hidden tests makes its notebook checks
    advisory in grades.csv and in the gradebook alike, with no list of cells to keep.
    """
    m = TASK_OF.match(spec.grade_id)
    return spec.grade and not spec.manual and m is not None \
        and m.group(1) in hidden_tests.TASK_POINTS


def task_layout() -> list[tuple[str, float]]:
    """(row, max_score) of every notebook row, in order, from the source notebooks."""
    rows = []
    for nb in NOTEBOOKS:
        cells = read_cells(REPO_ROOT / "assignments" / ASSIGNMENT / f"{nb}.ipynb")
        rows += [(r.task, r.max_score) for r in task_results(Outcome(nb, "missing"), cells)]
    return rows


def task_results(outcome: Outcome, cells: dict) -> list[TaskResult]:
    """One `nb:<task>` TaskResult per task of a notebook, from its grading outcome and its cells."""
    groups: dict[tuple[str, bool], list[Cell]] = {}
    for spec in cells.values():
        m = TASK_OF.match(spec.grade_id)
        if spec.grade and m and m.group(1) not in MODEL_GRADED:
            groups.setdefault((m.group(1), spec.manual), []).append(spec)
    results = []
    for (task, manual), specs in groups.items():
        name = f"nb:{task}:manual" if manual else f"nb:{task}"
        points = 0.0 if all(advisory(s) for s in specs) else sum(s.points for s in specs)
        ids = ", ".join(s.grade_id for s in specs)
        if outcome.status != "ok":
            results.append(TaskResult(name, 0.0, points, outcome.status, outcome.message))
        elif manual:
            results.append(TaskResult(name, 0.0, points, "pending",
                                      f"awaiting manual grading ({ids}: {points:g} points, "
                                      "graded by the instructor in nbgrader's formgrader)"))
        else:
            got = sum(outcome.scores.get(s.grade_id, 0.0) for s in specs)
            lost = [s.grade_id for s in specs
                    if outcome.scores.get(s.grade_id, 0.0) < s.points - 1e-9]
            msg = (f"all notebook checks passed ({ids})" if not lost else
                   f"notebook checks failed: {', '.join(lost)}; open the autograded notebook "
                   "cell to see its error, fix, and run the notebook top to bottom")
            note = (f"advisory, 0 points: the hidden tests grade {task}" if points == 0
                    else "advisory: checks run in your own kernel")
            results.append(TaskResult(name, min(got, points), points,
                                      "failed" if lost else "passed", f"{msg} ({note})"))
    return results


def grade_notebooks(staging: Path, student_id: str, *, workdir: Path, limits: Limits | None = None,
                    course_out: Path | None = None, fast: bool = True,
                    deadline: float | None = None,
                    nbgrader: Nbgrader = NBGRADER) -> list[TaskResult]:
    """Autograde the submission's notebooks; TaskResults named nb:<task> / nb:<task>:manual.

    Inputs:
    - staging: the unpacked submission (cs_layers/*.py, assignments/convnets/*.ipynb, model).
    - student_id: the submission's id (letters, digits, '_', '-', '.').
    - workdir: an empty folder for the private course folders (one per notebook).
    - limits: sandbox limits of one notebook run (default NOTEBOOK_LIMITS).
    - course_out: the autograde OUT folder: the template is cached there and the scores go
      to OUT/gradebook.db (with the autograded notebooks under OUT/autograded/<id>/convnets/).
    - fast: run the notebooks with CS_LAYERS_FAST=1 (the CI-length run; default).
    - deadline: time.monotonic() by which the submission's budget runs out; a notebook
      run gets at most what is left, and none starts after it ("timeout").
    - nbgrader: what finds the template, stages, runs and reads the scores (NBGRADER).
    """
    if not STUDENT_ID.match(student_id):
        raise ValueError(f"student id {student_id!r} is not a plain id; rename the submission")
    limits = limits or NOTEBOOK_LIMITS
    present = [nb for nb in NOTEBOOKS
               if (Path(staging) / "assignments" / ASSIGNMENT / f"{nb}.ipynb").is_file()]
    if not present and course_out is None:  # nothing to run or record: no nbgrader needed
        return [r for nb in NOTEBOOKS for r in task_results(
            Outcome(nb, "missing", f"assignments/{ASSIGNMENT}/{nb}.ipynb is not in the "
                                   "submission; add it and submit again"),
            read_cells(REPO_ROOT / "assignments" / ASSIGNMENT / f"{nb}.ipynb"))]
    template = nbgrader.template(Path(course_out) / ".nbgrader_template" if course_out else None)
    start = time.monotonic()
    left = None if deadline is None else deadline - start
    if left is not None and left <= 0:
        outcomes = [_out_of_time(nb) for nb in NOTEBOOKS]
    else:  # both notebooks in one nbgrader run: its start-up is paid once
        outcomes = grade_together(Path(staging), student_id, NOTEBOOKS, template,
                                  workdir=Path(workdir), limits=limits, fast=fast, left=left,
                                  nbgrader=nbgrader)
    ran = [o for o in outcomes if o.status not in ("missing", "rejected")]
    if len(ran) > 1 and any(o.status in RUN_FAILED for o in ran):
        # the shared run failed: grade its notebooks one at a time, each with its own limits,
        # so a notebook that runs fine is not blamed for the other one (while budget is left)
        for i, o in enumerate(outcomes):
            if o.status not in RUN_FAILED:
                continue
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                continue  # keep the shared run's outcome: no budget to tell them apart
            nb_limits = limits if left is None or left >= limits.wall_s else \
                dataclasses.replace(limits, wall_s=left)
            outcomes[i] = grade_notebook(Path(staging), student_id, o.notebook, template,
                                         workdir=Path(workdir), limits=nb_limits, fast=fast,
                                         nbgrader=nbgrader)
    results = []
    for outcome in outcomes:
        log.info("notebook %s of %s: %s (%.1f s since the notebooks started)", outcome.notebook,
                 student_id, outcome.status, time.monotonic() - start)
        results += task_results(outcome, template.cells[outcome.notebook])
    if course_out is not None:
        from grading import gradebook
        gradebook.record(Path(course_out), template, student_id, outcomes)
    return results
