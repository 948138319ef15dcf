"""Per-student HTML feedback: each task's status, score, message and tolerance.

The page is built only from the student's `TaskResult`s (never from the hidden suite),
every string is HTML-escaped, and messages are defensively cut down: anything that looks
like a dumped array (a bracketed run of numbers) or a long decimal is redacted and long
messages are truncated, so a careless message in the grader cannot reveal hidden inputs or
expected values. Text from the student's own process is scrubbed before it ever becomes a
message (grading/scrub.py); this is the second layer.
"""
from __future__ import annotations

import html
import os
import re
import tempfile
from pathlib import Path

from grading.results import TaskResult

MAX_MESSAGE_CHARS = 600
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
# A square-bracketed run of 3+ numbers, as numpy or Python print arrays: "[0.1 0.2 0.3]",
# "[[1, 2, 3]"; shape tuples such as "(2, 3, 4)" are kept.
_ARRAY_DUMP = re.compile(r"\[\s*\[?\s*" + _NUM + r"(?:[\s,]+" + _NUM + r"){2,}[^\]]*\]*")
# A number printed with 4+ decimals is never one the grader writes (errors read 3.2e-02,
# accuracies 0.953): redact it, whatever put it there.
_LONG_DECIMAL = re.compile(r"[-+]?\d*\.\d{4,}(?:[eE][-+]?\d+)?")
_STATUS_COLOURS = {
    "passed": "#1b7a1b", "failed": "#b00020", "error": "#b00020", "timeout": "#a65c00",
    "memory": "#a65c00", "missing": "#555555", "rejected": "#b00020",
    "pending": "#555555", "graded": "#1b7a1b",
}


def safe_message(message: str) -> str:
    """The message as shown to the student: array dumps redacted, length capped."""
    text = _ARRAY_DUMP.sub("[values hidden]", str(message))
    text = _LONG_DECIMAL.sub("#", text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = text[: MAX_MESSAGE_CHARS - 1] + "…"
    return text


def render(student_id: str, results: list[TaskResult], *, note: str = "") -> str:
    """The feedback page (a complete HTML document) for one student."""
    esc = html.escape
    score = sum(r.score for r in results)
    max_score = sum(r.max_score for r in results)
    rows = []
    for r in results:
        tol = "" if r.tolerance is None else f"{r.tolerance:.0e}"
        colour = _STATUS_COLOURS.get(r.status, "#000000")
        rows.append(
            "<tr>"
            f"<td>{esc(r.task)}</td>"
            f'<td style="color:{colour};font-weight:bold">{esc(r.status)}</td>'
            f"<td>{r.score:g} / {r.max_score:g}</td>"
            f"<td>{esc(tol)}</td>"
            f"<td><pre>{esc(safe_message(r.message))}</pre></td>"
            "</tr>"
        )
    note_html = f"<p>{esc(safe_message(note))}</p>" if note else ""
    return (
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
        f"<title>Feedback for {esc(student_id)}</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}pre{white-space:pre-wrap;margin:0}</style></head><body>\n"
        f"<h1>Feedback for {esc(student_id)}</h1>\n"
        f"<p>Total: {score:g} / {max_score:g}</p>\n{note_html}\n"
        "<p>Hidden tests use fresh inputs drawn for this grading run; they are not shown. "
        "Run <code>python -m cs_layers.check</code> to reproduce failures on the public tests."
        "</p>\n"
        "<table><tr><th>task</th><th>status</th><th>score</th><th>tolerance</th>"
        "<th>message</th></tr>\n" + "\n".join(rows) + "\n</table>\n</body></html>\n"
    )


def write_feedback(path: Path, student_id: str, results: list[TaskResult], *, note: str = "") -> None:
    """Write the page atomically (temporary file + os.replace)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(render(student_id, results, note=note))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
