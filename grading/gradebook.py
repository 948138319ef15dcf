"""The course gradebook: OUT/gradebook.db, nbgrader's own SQLite Gradebook.

autograde records every student's notebook cell scores here (grading/notebooks.py calls
`record`), so instructors grade the inline questions with nbgrader's formgrader (served by
`jupyter server` or `jupyter lab` started in OUT, at /formgrader), then bring the manual
scores into grades.csv with `python -m grading collect-manual OUT`.

OUT is laid out as an nbgrader course folder (nbgrader 0.9.6):
    nbgrader_config.py                      the course's config + this folder as the course
                                            root; `nbgrader export` writes
                                            nbgrader_grades.csv, never grades.csv
    gradebook.db                            assignment, cells, students, scores
    assignments/convnets/, release/convnets/  the release notebooks (no solutions): the
                                            assignment formgrader lists
    submitted/<student_id>/convnets/        the notebooks the student handed in
    autograded/<student_id>/convnets/       the notebooks as nbgrader autograded them
The submitted and autograded notebooks come from the student (the autograded ones were
run by the student's own kernel): formgrader shows them, so treat them like any student
file.

Advisory cells (grading.notebooks.advisory: checks of a task the hidden tests grade) carry
0 points here, as in grades.csv: the gradebook's totals are exactly the sum of grades.csv's
nb: rows.

Cells of a notebook that did not run to the end (rejected, missing, timeout, memory,
error) get 0 automatic points and are flagged "needs manual grade", so a crash never
hides as a plain zero. Writes are serialised with a lock file (parallel --jobs).
"""
from __future__ import annotations

import fcntl
import re
import shutil
import warnings
from pathlib import Path

from cs_layers import course
from grading import safeio

ASSIGNMENT = course.ASSIGNMENT
DB_NAME = "gradebook.db"
EXPORT_CSV = "nbgrader_grades.csv"  # where `nbgrader export` writes in OUT (never grades.csv)
TASK_OF = re.compile(r"^(task\d+_\d+)")
CONFIG_TAIL = f"""

# ---- added by `python -m grading autograde`: this folder is the course root ----
import os as _os  # noqa: E402
c.CourseDirectory.root = _os.path.dirname(_os.path.abspath(__file__))
# `nbgrader export` must not overwrite the autograder's grades.csv
c.CsvExportPlugin.to = "{EXPORT_CSV}"
"""


def db_url(out: Path) -> str:
    return f"sqlite:///{Path(out).resolve() / DB_NAME}"


def _zero_advisory(gb, template) -> None:
    """Advisory cells are worth 0 points in the course gradebook, as in grades.csv."""
    from grading.notebooks import advisory

    for nb, cells in template.cells.items():
        for gid, spec in cells.items():
            if advisory(spec):
                cell = gb.find_grade_cell(gid, nb, ASSIGNMENT)
                if cell.max_score != 0:
                    cell.max_score = 0.0


def _write_config(out: Path, template) -> None:
    text = (template.root / "nbgrader_config.py").read_text(encoding="utf-8")
    (out / "nbgrader_config.py").write_text(text + CONFIG_TAIL, encoding="utf-8")


def _publish_release(out: Path, template) -> None:
    """The release notebooks (no solutions) as the course's source and release folders."""
    for step in ("assignments", "release"):
        dest = out / step / ASSIGNMENT
        if dest.is_dir():
            continue
        dest.mkdir(parents=True)
        for nb in template.cells:
            shutil.copyfile(template.root / "release" / ASSIGNMENT / f"{nb}.ipynb",
                            dest / f"{nb}.ipynb")


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
            _write_config(out, template)
        _publish_release(out, template)
        if not (out / DB_NAME).exists():  # start from the template: structure + alembic stamp
            shutil.copyfile(template.db, out / DB_NAME)
        from grading.notebooks import advisory

        with Gradebook(db_url(out), course_id=template.course_id) as gb, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's own autoflush noise
            _ensure_structure(gb, template)
            _zero_advisory(gb, template)
            gb.update_or_create_student(student_id)
            gb.update_or_create_submission(ASSIGNMENT, student_id)
            for o in outcomes:
                ran = o.status == "ok"
                for gid, spec in template.cells[o.notebook].items():
                    if not spec.grade:
                        continue
                    g = gb.find_grade(gid, o.notebook, ASSIGNMENT, student_id)
                    if advisory(spec):  # 0 points: the hidden tests grade this task
                        g.auto_score, g.needs_manual_grade = 0.0, False
                    elif ran and spec.manual:
                        g.auto_score, g.needs_manual_grade = None, True
                    elif ran:
                        g.auto_score, g.needs_manual_grade = float(o.scores.get(gid, 0.0)), False
                    else:  # did not run: no points, but flagged for the instructor
                        g.auto_score, g.needs_manual_grade = 0.0, o.status != "missing"
                    # manual_score is left alone: a regrade keeps the instructor's hand grades
            gb.db.commit()
        for o in outcomes:
            _copy_notebook(o.autograded, out / "autograded" / student_id / ASSIGNMENT
                           / f"{o.notebook}.ipynb")
            _copy_notebook(o.submitted, out / "submitted" / student_id / ASSIGNMENT
                           / f"{o.notebook}.ipynb")


def _copy_notebook(src: Path | None, dest: Path) -> None:
    """Copy a notebook the student's side produced (a regular file, size-capped) or drop dest."""
    dest.unlink(missing_ok=True)
    if src is None:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:  # written in the sandbox: never follow a link, block on a FIFO or copy without bound
        safeio.copy_bounded(src, dest, course.MAX_NOTEBOOK_BYTES)
    except safeio.Unsafe:
        dest.unlink(missing_ok=True)


def course_id(out: Path) -> str:
    """CourseDirectory.course_id of OUT/nbgrader_config.py."""
    from traitlets.config.loader import PyFileConfigLoader

    cfg = PyFileConfigLoader("nbgrader_config.py", path=str(out)).load_config()
    return str(cfg.CourseDirectory.get("course_id", "default_course"))


def manual_scores(out: Path) -> dict[str, dict[str, float | None]]:
    """{student: {"nb:<task>:manual": score}} from OUT/gradebook.db's hand-graded answers.

    The score of a row is the sum of its cells' manual scores, or None while any of its
    cells is not graded yet.
    """
    from nbgrader.api import Gradebook

    scores: dict[str, dict[str, float | None]] = {}
    with Gradebook(db_url(out), course_id=course_id(out)) as gb:
        assignment = gb.find_assignment(ASSIGNMENT)
        rows = {}  # (notebook, cell) -> row, for cells graded by hand (grade + solution)
        for nb in assignment.notebooks:
            answers = {c.name for c in nb.solution_cells}
            for c in nb.grade_cells:
                m = TASK_OF.match(c.name)
                if c.name in answers and m:
                    rows[(nb.name, c.name)] = f"nb:{m.group(1)}:manual"
        for sub in assignment.submissions:
            got: dict[str, float | None] = {}
            for nb in sub.notebooks:
                for g in nb.grades:
                    row = rows.get((nb.name, g.name))
                    if row is None:
                        continue
                    before = got.get(row, 0.0)
                    got[row] = None if before is None or g.manual_score is None \
                        else before + float(g.manual_score)
            scores[sub.student.id] = got
    return scores


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
