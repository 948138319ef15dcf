"""Leak check: no line of any solution region may appear anywhere in a release.

Secrets are the lines inside solution regions of the instructor's
`cs_layers/*.py` and, in the source notebooks, the lines inside nbgrader
solution / hidden-test regions (nbgrader's rule: any line holding the
delimiter, single-hash markers included) and the text of solution markdown
cells. A line is not secret when it is trivial (`pass`, `return out`, a lone
bracket ...) or when its code also appears in code the release ships on
purpose (given code outside the regions, docstrings included), since then
the student sees it anyway.

Lines are compared as token sequences (`\\w+` runs and single symbols), so
whitespace, line wrapping and the secret's own comments do not matter: a
solution retyped without its comments, or quoted inside markdown, is found.
A secret of at least MIN_TOKENS tokens (MIN_WORDS of them words) is searched
for anywhere in a file's token stream; a shorter one only as a whole line
(a trailing or leading comment aside), which keeps common short lines of
given code and prose from matching by chance.

Every file of the release is searched, in every form it can hold text:
UTF-8, UTF-16 and UTF-32 (with or without a byte-order mark), JSON strings
(notebook sources, outputs, metadata), zip/npz, gzip, xz, bz2 and tar
archives (nested), and `.npy` arrays of strings. A file that cannot be
opened, an archive too big or nested too deep, and a pickled array fail the
check rather than pass unread. Only allow-listed file types may ship, and
anything that looks like a solution marker fails the build (markers.py).
"""
import bz2
import gzip
import io
import json
import lzma
import re
import tarfile
import tokenize
import zipfile
from bisect import bisect_right
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cs_layers import course
from grading import markers

MIN_TOKENS = 6       # shorter secrets only count as whole lines, never inside longer text
MIN_WORDS = 3        # ... and so do secrets with fewer identifier/number tokens than this
MAX_UNPACKED = 512 * 1024 * 1024   # bytes an archive may unpack to before the check gives up (and fails)
MAX_DEPTH = 4        # archives inside archives
_TOKEN = re.compile(r"\w+|[^\w\s]")
_TRIVIAL = re.compile(
    r"^(pass|break|continue|else:|try:|finally:|return|\"\"\"|'''|[()\[\]{},:;]+"
    r"|return [\w\s,()]*|raise|yield [\w\s,()]*)$")

RELEASE_MARK = ".cs_layers_release.json"   # written by grading.release into every release it builds
# What a release may hold: cs_layers/<module>.py, and these types elsewhere.
ALLOWED_SUFFIXES = {".py", ".ipynb", ".md", ".txt", ".toml", ".cfg", ".json", ".sh", ".npz", ".npy",
                    ".jpg", ".jpeg", ".png", ".csv"}
ALLOWED_NAMES = {".gitignore", RELEASE_MARK, ".release_manifest.json"}
_MODULE = re.compile(r"^cs_layers/[A-Za-z_][A-Za-z0-9_]*\.py$")

FORBIDDEN_PARTS = {"__pycache__", ".venv", "venv", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis",
                   "grading", "bench", "cifar-10-batches-py", ".git", "autograded", "submitted", "feedback"}
FORBIDDEN_NAMES = {course.MODEL_FILE, "gradebook.db", "submission.zip", "nbgrader_config.py"}


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


def tokens(text):
    """The comparison form of a text: its `\\w+` runs and single symbols, whitespace dropped."""
    return tuple(_TOKEN.findall(text))


def is_release_module(rel):
    """True for `cs_layers/<python identifier>.py`, the only files of cs_layers/ that ship."""
    return bool(_MODULE.match(rel))


def allowed_in_release(rel):
    """True when the release may hold a file at `rel` (its type is on the allow-list)."""
    name = Path(rel).name
    if name in ALLOWED_NAMES:
        return True
    if rel.startswith("cs_layers/"):
        return is_release_module(rel)
    return not name.startswith(".") and Path(name).suffix.lower() in ALLOWED_SUFFIXES


def is_trivial(line):
    s = " ".join(line.split())
    return not s or s.startswith("#") or bool(_TRIVIAL.match(s))


def _strip_hash(line):
    """`line` up to a `#` that is not inside a quoted string (fallback for code tokenize rejects)."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#":
            return line[:i]
    return line


def code_lines(lines):
    """`lines` (of one Python source) with their comments removed; same count and order."""
    cuts = {}
    try:
        for tok in tokenize.generate_tokens(io.StringIO("\n".join(lines) + "\n").readline):
            if tok.type == tokenize.COMMENT:
                cuts[tok.start[0] - 1] = tok.start[1]
    except (tokenize.TokenError, SyntaxError):
        return [_strip_hash(line) for line in lines]
    return [line[:cuts[i]] if i in cuts else line for i, line in enumerate(lines)]


def _split_notebook_cell(lines, path):
    """(secret_indices, public_indices) of one source-notebook code cell, by nbgrader's rule."""
    secret, public, inside = [], [], False
    for i, line in enumerate(lines):
        kind = markers.notebook_marker(line, f"{path} line {i + 1}")
        if kind == "begin":
            inside = True
        elif kind == "end":
            inside = False
        else:
            (secret if inside else public).append(i)
    return secret, public


def _public_blob(lines):
    return "\n".join(" ".join(tokens(line)) for line in lines)


def _candidates(source_root):
    """(candidates, public): every solution line as (code without comments, Secret), and every
    line the release ships on purpose (given code, public notebook cells) as (line, where)."""
    root = Path(source_root)
    candidates, public = [], []
    for py in sorted((root / "cs_layers").glob("*.py")):
        rel = py.relative_to(root).as_posix()
        text = py.read_text(encoding="utf-8")
        regions = markers.parse_regions(text, rel)
        lines = text.splitlines()
        code = code_lines(lines)
        inside = set()
        for r in regions:
            for j in range(r.begin + 1, r.end):
                candidates.append((code[j], Secret(lines[j], f"{rel}:{j + 1} ({r.task})")))
            inside.update(range(r.begin, r.end + 1))
        public.extend((line, f"{rel}:{i + 1}") for i, line in enumerate(lines) if i not in inside)
    for nb in sorted((root / "assignments").rglob("*.ipynb")):
        if ".ipynb_checkpoints" in nb.parts:
            continue
        rel = nb.relative_to(root).as_posix()
        for c, cell in enumerate(json.loads(nb.read_text(encoding="utf-8")).get("cells", [])):
            source = cell.get("source", "")
            lines = ("".join(source) if isinstance(source, list) else source).splitlines()
            meta = cell.get("metadata", {}).get("nbgrader", {})
            where = f"{rel}: cell {c}"
            secret, pub = _split_notebook_cell(lines, where)
            if meta.get("solution") and len(secret) + len(pub) == len(lines):   # no region: nbgrader
                secret, pub = list(range(len(lines))), []                      # replaces the whole cell
            code = code_lines(lines) if cell.get("cell_type") == "code" else lines
            candidates.extend((code[i], Secret(lines[i], where)) for i in secret)
            public.extend((lines[i], f"{where}, line {i + 1}") for i in pub)
    return candidates, public


def collect_secrets(source_root):
    """Secrets of the instructor tree at `source_root` (token tuple -> Secret), minus given code.

    Raises markers.MarkerError on anything that looks like a marker but does not parse as one.
    """
    candidates, public = _candidates(source_root)
    blob = " " + _public_blob(line for line, _ in public).replace("\n", " \n ") + " "
    secrets = {}
    for code, s in candidates:
        k = tokens(code)
        if k and not is_trivial(code) and f" {' '.join(k)} " not in blob:
            secrets.setdefault(k, s)
    return secrets


def _forbidden(rel):
    parts = set(Path(rel).parts)
    if parts & FORBIDDEN_PARTS:
        return f"forbidden folder {sorted(parts & FORBIDDEN_PARTS)[0]!r} in a release"
    if Path(rel).name in FORBIDDEN_NAMES:
        return "file that must not ship in a release"
    if rel.startswith("tests/") and not (rel.startswith("tests/public/") or rel == "tests/conftest.py"):
        return "instructor-only test in a release"
    if not allowed_in_release(rel):
        return "file type not on the release allow-list (only cs_layers/<module>.py and known text/data types ship)"
    return None


class _Unreadable(Exception):
    """Part of a file cannot be opened for checking; the check fails rather than skip it."""


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


def _capped(read, name):
    data = read(MAX_UNPACKED + 1)
    if len(data) > MAX_UNPACKED:
        raise _Unreadable(f"{name} unpacks to more than {MAX_UNPACKED >> 20} MB")
    return data


def _members(name, data):
    """[(member name, bytes)] when `data` is an archive or compressed stream, else None."""
    try:
        if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
            with zipfile.ZipFile(io.BytesIO(data)) as zf:
                if sum(i.file_size for i in zf.infolist()) > MAX_UNPACKED:
                    raise _Unreadable(f"{name} unpacks to more than {MAX_UNPACKED >> 20} MB")
                return [(f"{name}!{i.filename}", zf.read(i)) for i in zf.infolist() if not i.is_dir()]
        is_bz2 = data[:3] == b"BZh" and data[4:10] == b"1AY&SY"
        for magic, opener, what in ((data[:2] == b"\x1f\x8b", gzip.GzipFile, "gunzip"),
                                    (data[:6] == b"\xfd7zXZ\x00", lzma.LZMAFile, "unxz"),
                                    (is_bz2, bz2.BZ2File, "bunzip2")):
            if magic:
                with opener(io.BytesIO(data)) as f:
                    return [(f"{name}!{what}", _capped(f.read, name))]
        if len(data) > 262 and data[257:262] == b"ustar":
            out = []
            with tarfile.open(fileobj=io.BytesIO(data)) as tf:
                for m in tf.getmembers():
                    f = tf.extractfile(m)
                    if f is not None:
                        out.append((f"{name}!{m.name}", _capped(f.read, name)))
            return out
    except _Unreadable:
        raise
    except (OSError, EOFError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, ValueError) as e:
        raise _Unreadable(f"{name} looks like an archive but cannot be opened ({type(e).__name__}: {e})") from e
    return None


def _npy_strings(name, data):
    """Lines held by a `.npy` array of strings; raises _Unreadable for a pickled (object) array."""
    try:
        f = io.BytesIO(data)
        version = np.lib.format.read_magic(f)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
            np.lib.format.read_array_header_2_0
        _, _, dtype = read_header(f)   # the header only: nothing allocated yet
    except (ValueError, OSError, SyntaxError) as e:
        raise _Unreadable(f"{name} has a broken .npy header ({e})") from e
    if dtype.hasobject:
        raise _Unreadable(f"{name} is a pickled object array, which cannot be checked without running it")
    if dtype.kind not in "US":
        return []
    arr = np.load(io.BytesIO(data), allow_pickle=False)
    out = []
    for x in arr.ravel().tolist():
        out.extend((x.decode("utf-8", "replace") if isinstance(x, bytes) else x).splitlines())
    return out


def _texts(data):
    """Every decoding of `data` that could hold readable text."""
    views = [data.decode("utf-8", "replace").lstrip("\ufeff")]
    if b"\x00" in data:
        for enc, width in (("utf-16-le", 2), ("utf-16-be", 2), ("utf-32-le", 4), ("utf-32-be", 4)):
            for offset in range(width):
                views.append(data[offset:].decode(enc, "replace").lstrip("\ufeff"))
    return views


def _units(name, data, depth=0):
    """Yield (where, [lines]) for every text view of a file's bytes, opening archives."""
    members = _members(name, data)
    if members is not None:
        if depth >= MAX_DEPTH:
            raise _Unreadable(f"{name}: archives nested more than {MAX_DEPTH} deep")
        for inner, blob in members:
            yield from _units(inner, blob, depth + 1)
        return
    if data.startswith(b"\x93NUMPY"):
        yield f"{name} (array strings)", _npy_strings(name, data)
    for k, text in enumerate(_texts(data)):
        label = name if k == 0 else f"{name} (decoded as UTF-16/32, view {k})"
        yield label, text.splitlines()
        stripped = text.strip()
        if stripped[:1] in ("{", "["):
            try:
                obj = json.loads(stripped)
            except ValueError:
                continue
            for path, s in _json_strings(obj):
                yield f"{label}: {path}", s.splitlines()


def _scan_lines(where, lines, long_keys, short_keys):
    """Leaks in one view: long secrets anywhere in the token stream, short ones as whole lines."""
    starts, parts, pos = [], [], 0
    hits = {}
    for i, line in enumerate(lines):
        toks = tokens(line)
        starts.append(pos)
        text = " ".join(toks)
        parts.append(text)
        pos += len(text) + 1
        if toks and short_keys:
            cut = toks.index("#") if "#" in toks else len(toks)
            lead = 0
            while lead < len(toks) and toks[lead] in ("#", ">", "-", "*", "`"):
                lead += 1
            rest = toks[lead:]
            after = rest[:rest.index("#")] if "#" in rest else rest
            for cand in (toks, toks[:cut], rest, after):
                if cand in short_keys:
                    hits.setdefault(i, short_keys[cand])
    for i, line in enumerate(lines):
        if line.lstrip().startswith("#") and markers.looks_like_marker(line):   # a marker line, not prose
            hits.setdefault(i, Secret(line, "solution marker text (a region nbgrader or the build did not strip)"))
    blob = " " + " ".join(parts) + " "
    for k, s in long_keys.items():
        start = blob.find(k)
        while start != -1:
            hits.setdefault(bisect_right(starts, start) - 1, s)
            start = blob.find(k, start + 1)
    for i in sorted(hits):
        origin = hits[i].origin if hits[i].origin.startswith("solution marker") else \
            f"solution line from {hits[i].origin}"
        yield Leak(f"{where}:{i + 1}", lines[i].strip()[:200], origin)


def split_secrets(secrets):
    """(long_keys, short_keys): search strings for long secrets, token tuples for short ones."""
    long_keys, short_keys = {}, {}
    for k, s in secrets.items():
        if len(k) >= MIN_TOKENS and sum(t[0].isalnum() or t[0] == "_" for t in k) >= MIN_WORDS:
            long_keys[" " + " ".join(k) + " "] = s
        else:
            short_keys[k] = s
    return long_keys, short_keys


def scan_file(rel, data, long_keys, short_keys):
    """Every Leak in one file's bytes (`rel` names it in messages)."""
    leaks, seen = [], set()
    try:
        for where, lines in _units(rel, data):
            for leak in _scan_lines(where, lines, long_keys, short_keys):
                if (leak.line, leak.origin) not in seen:    # one report per text, not per decoding
                    seen.add((leak.line, leak.origin))
                    leaks.append(leak)
    except _Unreadable as e:
        leaks.append(Leak(rel, "", f"cannot be checked, so it may not ship: {e}"))
    return leaks


def scan_release(release_root, secrets):
    """Every Leak in the release tree: forbidden files and secret lines, file:line each."""
    root = Path(release_root)
    long_keys, short_keys = split_secrets(secrets)
    leaks = []
    for f in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        rel = f.relative_to(root).as_posix()
        why = _forbidden(rel)
        if f.is_symlink():
            why = why or "symbolic link in a release (copy the file instead)"
        elif not f.is_file():
            why = why or "special file in a release"
        if why:
            leaks.append(Leak(rel, "", why))
            continue
        leaks.extend(scan_file(rel, f.read_bytes(), long_keys, short_keys))
    return leaks


def handed_out(source_root):
    """Solution lines that the given code or a public notebook cell holds as well (a docstring
    formula, a hint, a check cell): the leak check cannot search the release for those, since
    it ships them on purpose, so they must not exist. Returns a Leak per place, matched as the
    leak check matches (long lines anywhere in a line, short ones as whole lines)."""
    candidates, public = _candidates(source_root)
    secrets = {}
    for code, s in candidates:
        k = tokens(code)
        if k and not is_trivial(code):
            secrets.setdefault(k, s)
    long_keys, short_keys = split_secrets(secrets)
    found = []
    for line, where in public:
        for leak in _scan_lines(where, [line], long_keys, short_keys):
            found.append(Leak(where, leak.line, leak.origin))
    return found


def check_release(release_root, source_root, label=None):
    """Raise LeakError listing every leak of `source_root`'s solutions in `release_root`.

    Returns the number of distinct solution lines searched for. `label` names
    the release in messages (default: its path).
    """
    secrets = collect_secrets(source_root)
    if not secrets:
        raise LeakError(f"no solution lines found under {source_root}/cs_layers; is this the instructor tree?")
    handed = handed_out(source_root)
    if handed:
        shown = "\n".join(f"  {leak}" for leak in handed[:50])
        raise LeakError(f"{len(handed)} solution line(s) also appear in the given code or a public notebook "
                        f"cell of {source_root}, so the release hands them out:\n{shown}\nRewrite the "
                        f"docstring, hint or check there to point at the idea, not the line.")
    leaks = scan_release(release_root, secrets)
    if leaks:
        shown = "\n".join(f"  {leak}" for leak in leaks[:50])
        more = f"\n  ... and {len(leaks) - 50} more" if len(leaks) > 50 else ""
        raise LeakError(f"the release {label or release_root} leaks {len(leaks)} solution line(s) or forbidden "
                        f"file(s):\n{shown}{more}\nRemove them from the release sources (or fix the "
                        f"markers) and build again.")
    return len(secrets)
