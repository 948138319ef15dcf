"""Leak check: no line of any solution region may appear anywhere in a release.

Secrets are the lines inside solution regions of the instructor's
`cs_layers/*.py` and, in the source notebooks, the lines inside nbgrader
solution / hidden-test regions and the text of solution markdown cells.
A line is not secret when it is trivial (blank, a comment, `pass`, `return out`,
`return dx, dw, db`, a lone bracket ...) or when it also appears in code the
release ships on purpose (given code outside the regions, docstrings
included, also as part of a longer line), since then the student sees it anyway.

Every file of the release is searched: text files line by line, notebooks
through every JSON string (sources, outputs, metadata), and anything else as
bytes, opening zip/npz/gzip/tar archives. Lines are compared with all
whitespace removed. Files that must never ship (`__pycache__`, `.pyc`,
`grading/`, instructor tests, checkpoints, local downloads) are reported too.
"""
import bisect
import gzip
import io
import json
import re
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grading import markers

MIN_SUBSTRING = 16   # shorter secrets only count as whole lines, never inside longer text
_TRIVIAL = re.compile(
    r"^(pass|break|continue|else:|try:|finally:|return|\"\"\"|'''|[()\[\]{},:;]+"
    r"|return [\w\s,()]*|raise|yield [\w\s,()]*)$")
_HIDDEN = ("### BEGIN HIDDEN " + "TESTS", "### END HIDDEN " + "TESTS")

FORBIDDEN_PARTS = {"__pycache__", ".venv", "venv", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis",
                   "grading", "bench", "cifar-10-batches-py", ".git", "autograded", "submitted", "feedback"}
FORBIDDEN_SUFFIXES = (".pyc", ".pyo", ".tar.gz", ".part", ".db")
FORBIDDEN_NAMES = {"convnet_model.npz", "gradebook.db", "submission.zip", "nbgrader_config.py"}


@dataclass(frozen=True)
class Secret:
    text: str     # the line as written
    origin: str   # file:line in the solution source


@dataclass(frozen=True)
class Leak:
    where: str    # file:line (or file: location) in the release
    line: str     # what was found there
    origin: str   # where the secret comes from, or why the file is forbidden

    def __str__(self):
        return f"{self.where}: {self.origin}: {self.line!r}"


class LeakError(AssertionError):
    """The release leaks solutions; str() lists every leak as file:line."""


def key(line):
    """Comparison key: the line without any whitespace."""
    return "".join(line.split())


def is_trivial(line):
    s = " ".join(line.split())
    return not s or s.startswith("#") or bool(_TRIVIAL.match(s))


def _split_notebook_cell(source):
    """(secret_lines, public_lines) of one source-notebook code cell."""
    secret, public, inside = [], [], False
    for line in source.splitlines():
        s = line.strip()
        if s in (markers.BEGIN, _HIDDEN[0]):
            inside = True
        elif s in (markers.END, _HIDDEN[1]):
            inside = False
        else:
            (secret if inside else public).append(line)
    return secret, public


def collect_secrets(source_root):
    """Secrets of the instructor tree at `source_root`, minus lines given code shows anyway."""
    root = Path(source_root)
    candidates, public = [], set()
    for py in sorted((root / "cs_layers").glob("*.py")):
        rel = py.relative_to(root).as_posix()
        text = py.read_text(encoding="utf-8")
        regions = markers.parse_regions(text, rel)
        inside = set()
        for r in regions:
            for j, line in enumerate(r.body):
                candidates.append(Secret(line, f"{rel}:{r.begin + 2 + j} ({r.task})"))
            inside.update(range(r.begin, r.end + 1))
        public.update(key(line) for i, line in enumerate(text.splitlines()) if i not in inside)
    for nb in sorted((root / "assignments").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        rel = nb.relative_to(root).as_posix()
        for c, cell in enumerate(json.loads(nb.read_text(encoding="utf-8")).get("cells", [])):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if cell.get("cell_type") == "markdown" and meta.get("solution"):
                secret, pub = source.splitlines(), []
            else:
                secret, pub = _split_notebook_cell(source)
            candidates.extend(Secret(line, f"{rel}: cell {c}") for line in secret)
            public.update(key(line) for line in pub)
    public_blob = "\n".join(public)   # a secret shown inside given text (e.g. a docstring) is not secret
    secrets = {}
    for s in candidates:
        k = key(s.text)
        if not is_trivial(s.text) and k not in public and k not in public_blob:
            secrets.setdefault(k, s)
    return secrets


def _forbidden(rel):
    parts = set(Path(rel).parts)
    if parts & FORBIDDEN_PARTS:
        return f"forbidden folder {sorted(parts & FORBIDDEN_PARTS)[0]!r} in a release"
    if rel.endswith(FORBIDDEN_SUFFIXES) or Path(rel).name in FORBIDDEN_NAMES:
        return "file type that must not ship in a release"
    if rel.startswith("tests/") and not (rel.startswith("tests/public/") or rel == "tests/conftest.py"):
        return "instructor-only test in a release"
    return None


def _scan_lines(units, secrets, long_keys):
    """units: [(where, line)]. Yields Leaks for whole-line and substring matches."""
    joined, starts, pos = [], [], 0
    for _, line in units:
        k = key(line)
        starts.append(pos)
        joined.append(k)
        pos += len(k) + 1
    blob = "\n".join(joined)
    hits = {}
    for i, k in enumerate(joined):
        if k in secrets:
            hits[i] = secrets[k]
    for k in long_keys:
        start = blob.find(k)
        while start != -1:
            i = bisect.bisect_right(starts, start) - 1
            hits.setdefault(i, secrets[k])
            start = blob.find(k, start + 1)
    for i in sorted(hits):
        where, line = units[i]
        yield Leak(where, line.strip()[:200], f"solution line from {hits[i].origin}")


def _json_strings(obj, path=""):
    if isinstance(obj, str):
        yield path, obj
    elif isinstance(obj, list):
        if obj and all(isinstance(x, str) for x in obj):   # notebook multi-line strings
            yield path, "".join(obj)
        else:
            for i, x in enumerate(obj):
                yield from _json_strings(x, f"{path}[{i}]")
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield f"{path}.{k}" if path else k, k
            yield from _json_strings(v, f"{path}.{k}" if path else k)


def _units_of_bytes(name, data, depth=0):
    """Lines to scan in a file's bytes, opening archives."""
    if depth < 3 and data[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            for info in zf.infolist():
                yield from _units_of_bytes(f"{name}!{info.filename}", zf.read(info), depth + 1)
        return
    if depth < 3 and data[:2] == b"\x1f\x8b":
        try:
            inner = gzip.decompress(data)
        except OSError:
            inner = b""
        yield from _units_of_bytes(f"{name}!gunzip", inner, depth + 1)
        return
    if depth < 3 and len(data) > 262 and data[257:262] == b"ustar":
        with tarfile.open(fileobj=io.BytesIO(data)) as tf:
            for m in tf.getmembers():
                f = tf.extractfile(m)
                if f is not None:
                    yield from _units_of_bytes(f"{name}!{m.name}", f.read(), depth + 1)
        return
    if name.endswith(".ipynb"):
        try:
            nb = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            nb = None
        if nb is not None:
            for path, s in _json_strings(nb):
                for j, line in enumerate(s.splitlines()):
                    yield f"{name}: {path} line {j + 1}", line
            return
    try:
        text = data.decode("utf-8")
        for j, line in enumerate(text.splitlines()):
            yield f"{name}:{j + 1}", line
    except UnicodeDecodeError:
        text = data.decode("latin-1")
        for j, line in enumerate(text.splitlines()):
            yield f"{name}: byte line {j + 1} (binary)", line


def scan_release(release_root, secrets):
    """Every Leak in the release tree: forbidden files and secret lines, file:line each."""
    root = Path(release_root)
    long_keys = [k for k in secrets if len(k) >= MIN_SUBSTRING]
    leaks = []
    for f in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = f.relative_to(root).as_posix()
        why = _forbidden(rel)
        if f.is_symlink():
            why = why or "symbolic link in a release (copy the file instead)"
        if why:
            leaks.append(Leak(rel, "", why))
            continue
        units = list(_units_of_bytes(rel, f.read_bytes()))
        leaks.extend(_scan_lines(units, secrets, long_keys))
    return leaks


def check_release(release_root, source_root, label=None):
    """Raise LeakError listing every leak of `source_root`'s solutions in `release_root`.

    Returns the number of distinct solution lines searched for. `label` names
    the release in messages (default: its path).
    """
    secrets = collect_secrets(source_root)
    if not secrets:
        raise LeakError(f"no solution lines found under {source_root}/cs_layers; is this the instructor tree?")
    leaks = scan_release(release_root, secrets)
    if leaks:
        shown = "\n".join(f"  {leak}" for leak in leaks[:50])
        more = f"\n  ... and {len(leaks) - 50} more" if len(leaks) > 50 else ""
        raise LeakError(f"the release {label or release_root} leaks {len(leaks)} solution line(s) or forbidden "
                        f"file(s):\n{shown}{more}\nRemove them from the release sources (or fix the "
                        f"markers) and build again.")
    return len(secrets)
