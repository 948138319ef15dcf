"""Solution regions in .py files: parse, stub out, and put back.

A solution region in `cs_layers/*.py` looks like this (indentation free):

    # task2_3: conv_backward_naive
    ### BEGIN SOLUTION
    ...reference solution...
    ### END SOLUTION

`strip_solutions(text)` replaces each region (the BEGIN line through the END
line) by one line at the region's indentation:

    raise NotImplementedError("task2_3: implement conv_backward_naive — see ...")

The task line stays, so the student sees where to write. `restore_solutions`
is the inverse, used by the round-trip test. Both the release build and the
leak check use `parse_regions`, which fails with file:line on unbalanced or
nested markers and on a missing or ill-formed task line.
"""
import re
from dataclasses import dataclass

from cs_layers import course

# Spelled in two parts so that this file holds no marker line of its own.
BEGIN = "### BEGIN " + "SOLUTION"
END = "### END " + "SOLUTION"

# nbgrader's own rule for notebooks: any line that holds one of these is a marker.
NB_BEGIN = ("BEGIN " + "SOLUTION", "BEGIN HIDDEN " + "TESTS")
NB_END = ("END " + "SOLUTION", "END HIDDEN " + "TESTS")
# What a marker with a typo looks like: `### BEGIN  SOLUTION`, `## END SOLUTON`, `# begin solution`, ...
_LOOKALIKE = (re.compile(r"(?i)\b(begin|end)[ \t_-]*(sol|slo|sou|hidden[ \t_-]*test)"),
              re.compile(r"^\s*#+\s*(BEGIN|END)\b"))

TASK_LINE = re.compile(r"^(?P<indent>[ \t]*)# (?P<task>task\d+_\d+): (?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*$")
STUB_LINE = re.compile(
    r'^(?P<indent>[ \t]*)raise NotImplementedError\("(?P<task>task\d+_\d+): '
    r'implement (?P<name>[A-Za-z_][A-Za-z0-9_.]*) — see [^"]*"\)\s*$')


notebook_for = course.notebook_for  # the notebook that introduces a task


def stub_message(task, name):
    return (f"{task}: implement {name} — see {course.NOTEBOOK_DIR}/{notebook_for(task)}, "
            f"section {task}")


def stub_line(indent, task, name):
    return f'{indent}raise NotImplementedError("{stub_message(task, name)}")'


class MarkerError(ValueError):
    """A malformed solution region; the message starts with file:line."""


def looks_like_marker(line):
    """True for a line that is, or looks like, a solution or hidden-test marker."""
    return any(p.search(line) for p in _LOOKALIKE)


def notebook_marker(line, where):
    """'begin', 'end' or None for one line of a notebook cell, by nbgrader's rule (the delimiter
    anywhere in the line, any number of hashes); MarkerError for a lookalike nbgrader would miss."""
    if any(d in line for d in NB_BEGIN):
        return "begin"
    if any(d in line for d in NB_END):
        return "end"
    if looks_like_marker(line):
        raise MarkerError(f"{where}: {line.strip()!r} looks like a solution marker but nbgrader would not "
                          f"recognise it, so the region would ship; write exactly {BEGIN!r} / {END!r}.")
    return None


@dataclass(frozen=True)
class Region:
    task: str
    name: str
    indent: str
    task_line: int   # 0-based index of the `# taskX_Y: name` line
    begin: int       # 0-based index of the BEGIN line
    end: int         # 0-based index of the END line
    body: tuple      # the solution lines between BEGIN and END (no newlines)


def _where(path, i):
    return f"{path}:{i + 1}"


def parse_regions(text, path="<text>"):
    """Return the list of Regions in `text`, or raise MarkerError with file:line."""
    lines = text.splitlines()
    regions, open_at = [], None
    for i, line in enumerate(lines):
        stripped = line.strip()
        mentions = looks_like_marker(line)
        if stripped == BEGIN:
            if open_at is not None:
                raise MarkerError(f"{_where(path, i)}: nested {BEGIN}; the region opened at line "
                                  f"{open_at + 1} has no {END} yet. Close it before opening another.")
            m = TASK_LINE.match(lines[i - 1]) if i > 0 else None
            if m is None:
                raise MarkerError(
                    f"{_where(path, i)}: the line above {BEGIN} must be '# <task_id>: <function_name>' "
                    f"(e.g. '# task2_3: conv_backward_naive') at the same indentation; found "
                    f"{(lines[i - 1] if i > 0 else '<start of file>')!r}.")
            indent = line[:len(line) - len(line.lstrip())]
            if m.group("indent") != indent:
                raise MarkerError(f"{_where(path, i)}: the task line above {BEGIN} is indented differently "
                                  f"from the marker; indent both the same.")
            open_at = i
        elif stripped == END:
            if open_at is None:
                raise MarkerError(f"{_where(path, i)}: {END} without a matching {BEGIN} above it.")
            begin_line = lines[open_at]
            indent = begin_line[:len(begin_line) - len(begin_line.lstrip())]
            if line[:len(line) - len(line.lstrip())] != indent:
                raise MarkerError(f"{_where(path, i)}: {END} is indented differently from its {BEGIN} "
                                  f"at line {open_at + 1}; indent both the same.")
            body = tuple(lines[open_at + 1:i])
            if not any(b.strip() and not b.strip().startswith("#") for b in body):
                raise MarkerError(f"{_where(path, open_at)}: empty solution region; put the reference "
                                  f"solution between the markers.")
            m = TASK_LINE.match(lines[open_at - 1])
            regions.append(Region(m.group("task"), m.group("name"), indent, open_at - 1, open_at, i, body))
            open_at = None
        elif mentions:
            raise MarkerError(f"{_where(path, i)}: {stripped[:80]!r} looks like a solution marker but is not "
                              f"exactly {BEGIN!r} or {END!r} (markers must be alone on their line, spelled "
                              f"exactly); fix it, or the region would ship unstripped.")
    if open_at is not None:
        raise MarkerError(f"{_where(path, open_at)}: {BEGIN} is never closed; add {END} after the solution.")
    return regions


def _join(lines, text):
    out = "\n".join(lines)
    return out + "\n" if text.endswith("\n") else out


def strip_solutions(text, path="<text>", tasks=None):
    """Return (stubbed_text, regions): every region (or those of `tasks` only) replaced by its stub."""
    regions = parse_regions(text, path)
    if tasks is not None:
        regions = [r for r in regions if r.task in tasks]
    lines = text.splitlines()
    out, pos = [], 0
    for r in regions:
        out.extend(lines[pos:r.begin])
        out.append(stub_line(r.indent, r.task, r.name))
        pos = r.end + 1
    out.extend(lines[pos:])
    return _join(out, text), regions


def restore_solutions(stubbed_text, regions, path="<text>"):
    """Inverse of strip_solutions: put each region's solution back in place of its stub.

    `regions` come from parsing the solution source. Stubs are matched in order
    and must name the same task and function; a mismatch raises MarkerError.
    """
    lines = stubbed_text.splitlines()
    out, todo = [], list(regions)
    for i, line in enumerate(lines):
        m = STUB_LINE.match(line)
        if m is None:
            out.append(line)
            continue
        if not todo:
            raise MarkerError(f"{_where(path, i)}: stub for {m.group('task')} has no solution to put back.")
        r = todo.pop(0)
        if (m.group("task"), m.group("name"), m.group("indent")) != (r.task, r.name, r.indent):
            raise MarkerError(f"{_where(path, i)}: stub for {m.group('task')}: {m.group('name')} found where "
                              f"the solution source has {r.task}: {r.name}; the files do not match.")
        out.extend([r.indent + BEGIN, *r.body, r.indent + END])
    if todo:
        raise MarkerError(f"{path}: {len(todo)} solution region(s) have no stub in the stubbed file "
                          f"(first: {todo[0].task}: {todo[0].name}).")
    return _join(out, stubbed_text)
