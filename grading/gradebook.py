"""The course gradebook: OUT/gradebook.db, nbgrader's own SQLite Gradebook.

autograde records every student's notebook cell scores here (grading/notebooks.py calls
`record`), so instructors grade the inline questions with nbgrader's own tools:

    cd OUT && nbgrader formgrader      # or: nbgrader export (CSV of nbgrader's totals)

OUT is laid out as an nbgrader course folder: gradebook.db, nbgrader_config.py (a copy of
the course's), and autograded/<student_id>/convnets/<notebook>.ipynb. The autograded
notebooks were produced by the student's own kernel: formgrader shows their outputs, so
treat them like any student file.

Cells of a notebook that did not run to the end (rejected, missing, timeout, memory,
error) get 0 automatic points and are flagged "needs manual grade", so a crash never
hides as a plain zero. Writes are serialised with a lock file (parallel --jobs).
"""
from __future__ import annotations

import fcntl
import shutil
import warnings
from pathlib import Path

from grading import safeio

ASSIGNMENT = "convnets"
DB_NAME = "gradebook.db"
MAX_NOTEBOOK_BYTES = 50 << 20  # an autograded notebook larger than this is not copied out


def db_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / DB_NAME}"


def _ensure_structure(gb, template) -> None:
    """The assignment, its notebooks and cells, copied from the template's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    try:
        gb.find_assignment(ASSIGNMENT)
        return
    except MissingEntry:
        pass
    with Gradebook(f"sqlite:///{template.db}", course_id=template.course_id) as src:
        a = src.find_assignment(ASSIGNMENT)
        gb.update_or_create_assignment(ASSIGNMENT, duedate=a.duedate)
        for nb in a.notebooks:
            gb.update_or_create_notebook(nb.name, ASSIGNMENT)
            for c in nb.grade_cells:
                gb.update_or_create_grade_cell(c.name, nb.name, ASSIGNMENT,
                                               max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.solution_cells:
                gb.update_or_create_solution_cell(c.name, nb.name, ASSIGNMENT)
            for c in nb.task_cells:
                gb.update_or_create_task_cell(c.name, nb.name, ASSIGNMENT,
                                              max_score=c.max_score, cell_type=c.cell_type)
            for c in nb.source_cells:
                gb.update_or_create_source_cell(c.name, nb.name, ASSIGNMENT, cell_type=c.cell_type,
                                                locked=c.locked, source=c.source,
                                                checksum=c.checksum)


def record(out: Path, template, student_id: str, outcomes) -> None:
    """Record one student's notebook outcomes (grading.notebooks.Outcome) in OUT/gradebook.db.

    A student graded again (e.g. --resume after a kill) is overwritten, not duplicated.
    """
    from nbgrader.api import Gradebook

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    config = out / "nbgrader_config.py"
    with open(out / ".gradebook.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not config.exists():
            shutil.copy2(template.root / "nbgrader_config.py", config)
        if not (out / DB_NAME).exists():  # start from the template: structure + alembic stamp
            shutil.copyfile(template.db, out / DB_NAME)
        with Gradebook(db_url(out), course_id=template.course_id) as gb, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own autoflush noise
            _ensure_structure(gb, template)
            gb.update_or_create_student(student_id)
            gb.update_or_create_submission(ASSIGNMENT, student_id)
            for o in outcomes:
                ran = o.status == "ok"
                for gid, spec in template.cells[o.notebook].items():
                    if not spec.grade:
                        continue
                    g = gb.find_grade(gid, o.notebook, ASSIGNMENT, student_id)
                    if ran and spec.manual:
                        g.auto_score, g.needs_manual_grade = None, True
                    elif ran:
                        g.auto_score, g.needs_manual_grade = float(o.scores.get(gid, 0.0)), False
                    else:  # did not run: no points, but flagged for the instructor
                        g.auto_score, g.needs_manual_grade = 0.0, o.status != "missing"
                    # manual_score is left alone: a regrade keeps the instructor's hand grades
            gb.db.commit()
        for o in outcomes:
            _copy_autograded(out, student_id, o)


def _copy_autograded(out: Path, student_id: str, outcome) -> None:
    dest = out / "autograded" / student_id / ASSIGNMENT / f"{outcome.notebook}.ipynb"
    dest.unlink(missing_ok=True)
    src = outcome.autograded
    if src is None:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:  # written in the sandbox: never follow a link, block on a FIFO or copy without bound
        safeio.copy_bounded(src, dest, MAX_NOTEBOOK_BYTES)
    except safeio.Unsafe:
        dest.unlink(missing_ok=True)


def student_grades(out: Path, student_id: str, course_id: str) -> dict:
    """{(notebook, cell): (auto_score, manual_score, max_score, needs_manual_grade)} of a student."""
    from nbgrader.api import Gradebook

    rows = {}
    with Gradebook(db_url(out), course_id=course_id) as gb:
        sub = gb.find_submission(ASSIGNMENT, student_id)
        for nb in sub.notebooks:
            for g in nb.grades:
                rows[(nb.name, g.name)] = (g.auto_score, g.manual_score, g.max_score,
                                           g.needs_manual_grade)
    return rows
