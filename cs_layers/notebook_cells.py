"""The one integrity check of a notebook's nbgrader cells, shared by `submit` and the grader.

The release build records every nbgrader cell of a release notebook (`manifest`, written to
assignments/convnets/.release_manifest.json); `python -m cs_layers.submit` and the grader
(grading/notebooks.py) then compare a student's notebook with it (`problems`). A cell the
student may not change (a grade cell without an answer, or a locked cell) must be there
once, with its source, cell type, nbgrader flags and points as released (what nbgrader's own
checksum covers); an answer cell must be there once.
Each side words the problems for its reader.
"""
import hashlib
import json

FLAGS = ("grade", "locked", "solution")


def _source(cell) -> str:
    source = cell.get("source", "")
    return source if isinstance(source, str) else "".join(source)


def _nbgrader(cell):
    meta = cell.get("metadata", {})
    return meta.get("nbgrader") if isinstance(meta, dict) else None


def entry(cell) -> dict:
    """A cell's manifest entry: its flags, and when it is checked the sha256 of what nbgrader's
    checksum covers (source, cell type, flags, grade_id, and the points of a grade cell)."""
    meta = _nbgrader(cell) or {}
    out = {k: bool(meta.get(k, False)) for k in FLAGS}
    if checked(out):
        points = meta.get("points", 0) if out["grade"] else None
        try:
            points = None if points is None else float(points or 0)
        except (TypeError, ValueError):
            points = repr(points)
        what = [_source(cell), str(cell.get("cell_type", "")), *(out[k] for k in FLAGS),
                str(meta.get("grade_id", "")), points]
        out["sha256"] = hashlib.sha256(json.dumps(what).encode("utf-8")).hexdigest()
    return out


def checked(flags: dict) -> bool:
    """The student may not change this cell: locked, or graded without an answer of theirs."""
    return bool(flags.get("locked") or (flags.get("grade") and not flags.get("solution")))


def manifest(nb) -> dict:
    """grade_id -> entry for every nbgrader cell of a (release) notebook, parsed JSON."""
    cells = {}
    for cell in nb["cells"]:
        meta = _nbgrader(cell)
        if isinstance(meta, dict) and "grade_id" in meta:
            cells[meta["grade_id"]] = entry(cell)
    return cells


def problems(nb, expected: dict) -> list[tuple[str, str]]:
    """(kind, grade_id) for each way `nb` differs from its manifest `expected`, in order:
    "damaged" (nbgrader metadata that is not a dict; grade_id is the cell's 1-based number),
    "duplicated" (a released cell appears twice), "deleted", "edited" (a checked cell's
    source or flags changed)."""
    out, seen = [], {}
    for i, cell in enumerate(nb["cells"]):
        meta = _nbgrader(cell)
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if (meta is not None and not isinstance(meta, dict)) or not isinstance(gid, (str, type(None))):
            out.append(("damaged", str(i + 1)))
        elif gid in expected:
            if gid in seen:
                out.append(("duplicated", gid))
            seen.setdefault(gid, cell)
    for gid, flags in expected.items():
        if gid not in seen:
            out.append(("deleted", gid))
        elif checked(flags) and entry(seen[gid]) != flags:
            out.append(("edited", gid))
    return out
