"""Safe intake of one submission (a folder or a .zip) into a fresh staging folder.

Only the files the release defines are taken:
    cs_layers/<name>.py                           (the .py names of the instructor's cs_layers/)
    assignments/convnets/ConvolutionalNetworks.ipynb
    assignments/convnets/PyTorch.ipynb
    assignments/convnets/convnet_model.npz
    assignments/convnets/challenge_model.pt
Everything else (a submitted numpy.py, sitecustomize.py, build products...) is ignored
and listed in `Intake.ignored`.

A submission is refused as a whole (`Rejected`, graded "rejected" on every task) when it
is dangerous or unreadable: a corrupt zip, a member path that is absolute or climbs out
with `..`, a link or device file in the zip or at a whitelisted path of a folder, a zip
bomb (too large in total, or compressed too well), or a file over its size cap.
Folder submissions are read without ever following a link.
"""
from __future__ import annotations

import os
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from cs_layers import course

REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = tuple(f"{course.NOTEBOOK_DIR}/{name}.ipynb" for name in course.NOTEBOOKS)
MODEL_FILE = f"{course.NOTEBOOK_DIR}/{course.MODEL_FILE}"
CHALLENGE_FILE = f"{course.NOTEBOOK_DIR}/{course.CHALLENGE_FILE}"  # task3_5 weights (torch_nets.save_challenge)

# Size caps, in bytes: per file course.size_cap (the same as the student's submit); for the whole zip:
MAX_TOTAL_BYTES = 150 << 20       # everything kept, together
MAX_ZIP_MEMBERS = 5000            # members listed in one zip (kept or not)
MAX_ZIP_UNCOMPRESSED = 500 << 20  # declared total size of all members
MAX_RATIO = 200                   # uncompressed / compressed, per member above 1 MiB
_CHUNK = 1 << 16


class Rejected(Exception):
    """The submission as a whole cannot be graded; the message says why and what to do."""


@dataclass
class Intake:
    """What `unpack` copied into `staging` (relative POSIX paths) and what it left out."""

    staging: Path
    files: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    @property
    def module_files(self) -> list[str]:
        return [f for f in self.files if f.startswith("cs_layers/")]

    def has(self, relpath: str) -> bool:
        return relpath in self.files


def release_module_names(reference_dir: Path | None = None) -> frozenset[str]:
    """The `cs_layers/*.py` file names of the release (= of the instructor's package)."""
    ref = Path(reference_dir) if reference_dir is not None else REPO_ROOT / "cs_layers"
    names = frozenset(p.name for p in ref.glob("*.py") if p.is_file())
    if not names:
        raise RuntimeError(
            f"no cs_layers/*.py found in {ref}; run the grader from the instructor repository"
        )
    return names


def _whitelist(module_names: frozenset[str]) -> frozenset[str]:
    return frozenset({f"cs_layers/{n}" for n in module_names} | set(NOTEBOOKS) | {MODEL_FILE, CHALLENGE_FILE})


def unpack(src: Path, staging: Path, *, module_names: frozenset[str] | None = None) -> Intake:
    """Copy the whitelisted files of submission `src` (folder or .zip) into `staging`.

    Inputs:
    - src: a `<student_id>/` folder or a `<student_id>.zip` file, laid out like the release.
    - staging: a folder that must not exist yet or be empty; created with mode 0700.
    - module_names: the allowed `cs_layers/*.py` names (default: the instructor's).

    Returns an `Intake`. Raises `Rejected` (message safe to show the student).
    """
    src = Path(src)
    staging = Path(staging)
    staging.mkdir(mode=0o700, parents=True, exist_ok=True)
    if any(staging.iterdir()):
        raise ValueError(f"staging folder {staging} is not empty; pass a fresh folder")
    allowed = _whitelist(module_names if module_names is not None else release_module_names())
    st = os.lstat(src)
    if stat.S_ISLNK(st.st_mode):
        raise Rejected(f"the submission {src.name} is a link; submit a real folder or zip")
    if stat.S_ISDIR(st.st_mode):
        return _unpack_folder(src, staging, allowed)
    if stat.S_ISREG(st.st_mode) and src.suffix.lower() == ".zip":
        return _unpack_zip(src, staging, allowed)
    raise Rejected(
        f"the submission {src.name} is neither a folder nor a .zip file; "
        "build it with `python -m cs_layers.submit`"
    )


# ---------------------------------------------------------------- zip submissions

def _check_member_name(name: str) -> PurePosixPath:
    if "\\" in name or "\x00" in name:
        raise Rejected(f"zip member {name!r} has a backslash or NUL in its name; rebuild the zip "
                       "with `python -m cs_layers.submit`")
    path = PurePosixPath(name)
    if path.is_absolute() or (path.parts and path.parts[0].endswith(":")):
        raise Rejected(f"zip member {name!r} has an absolute path; rebuild the zip with "
                       "`python -m cs_layers.submit`")
    if ".." in path.parts:
        raise Rejected(f"zip member {name!r} points outside the submission folder (`..`); "
                       "rebuild the zip with `python -m cs_layers.submit`")
    return path


def _member_kind(info: zipfile.ZipInfo) -> str:
    """'dir', 'file', or the name of a forbidden kind (link, device...)."""
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):  # unix file type recorded
        if stat.S_ISLNK(mode):
            return "link"
        if stat.S_ISDIR(mode):
            return "dir"
        if stat.S_ISREG(mode):
            return "file"
        return "device or special file"
    return "dir" if info.is_dir() else "file"


def _strip_prefix(names: list[PurePosixPath], allowed: frozenset[str]) -> int:
    """How many leading folders to drop: 1 if everything sits in one top folder (zip of a folder)."""
    if any(str(n) in allowed for n in names):
        return 0
    tops = {n.parts[0] for n in names if n.parts}
    if len(tops) == 1 and any(len(n.parts) > 1 and str(PurePosixPath(*n.parts[1:])) in allowed
                              for n in names):
        return 1
    return 0


def _unpack_zip(src: Path, staging: Path, allowed: frozenset[str]) -> Intake:
    intake = Intake(staging)
    try:
        with zipfile.ZipFile(src) as zf:
            infos = zf.infolist()
            if len(infos) > MAX_ZIP_MEMBERS:
                raise Rejected(f"the zip lists {len(infos)} members (limit {MAX_ZIP_MEMBERS}); "
                               "submit only your cs_layers/*.py files, notebooks and model file")
            declared = sum(i.file_size for i in infos)
            if declared > MAX_ZIP_UNCOMPRESSED:
                raise Rejected(f"the zip unpacks to {declared >> 20} MiB (limit "
                               f"{MAX_ZIP_UNCOMPRESSED >> 20} MiB); remove datasets and outputs")
            paths = []
            for info in infos:
                path = _check_member_name(info.filename)  # every member, kept or not
                kind = _member_kind(info)
                if kind not in ("dir", "file"):
                    raise Rejected(f"zip member {info.filename!r} is a {kind}; links and special "
                                   "files are not accepted, submit plain files only")
                if info.flag_bits & 0x1:
                    raise Rejected(f"zip member {info.filename!r} is encrypted; submit an "
                                   "unencrypted zip")
                paths.append(path)
            strip = _strip_prefix([p for p, i in zip(paths, infos) if not i.is_dir()], allowed)
            total = 0
            for path, info in zip(paths, infos):
                if info.is_dir() or len(path.parts) <= strip:
                    continue
                rel = str(PurePosixPath(*path.parts[strip:]))
                if rel not in allowed:
                    intake.ignored.append(info.filename)
                    continue
                if rel in intake.files:
                    raise Rejected(f"the zip holds {rel} twice; rebuild it with "
                                   "`python -m cs_layers.submit`")
                cap = course.size_cap(rel)
                if info.file_size > cap:
                    raise Rejected(f"{rel} is {info.file_size >> 10} KiB (limit {cap >> 10} KiB)")
                if info.file_size > (1 << 20) and info.file_size > MAX_RATIO * max(info.compress_size, 1):
                    raise Rejected(f"{rel} is compressed {info.file_size // max(info.compress_size, 1)}"
                                   f"x (limit {MAX_RATIO}x): this looks like a zip bomb")
                total += copy_stream(zf.open(info), staging / rel, cap, rel)
                if total > MAX_TOTAL_BYTES:
                    raise Rejected(f"the kept files exceed {MAX_TOTAL_BYTES >> 20} MiB in total")
                intake.files.append(rel)
    except Rejected:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError, OSError,
            ValueError, NotImplementedError, RuntimeError) as err:
        raise Rejected(f"the zip file is corrupt or unreadable ({type(err).__name__}: {err}); "
                       "rebuild it with `python -m cs_layers.submit` and submit again") from err
    intake.files.sort()
    return intake


def copy_stream(fin, dest: Path, cap: int, rel: str) -> int:
    """Copy at most `cap` bytes (the declared size may lie), refusing anything larger."""
    dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    written = 0
    with fin, open(dest, "xb") as fout:
        while True:
            chunk = fin.read(_CHUNK)
            if not chunk:
                break
            written += len(chunk)
            if written > cap:
                raise Rejected(f"{rel} is larger than its limit of {cap >> 10} KiB")
            fout.write(chunk)
    return written


# ---------------------------------------------------------------- folder submissions

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def _open_dir(parent_fd: int, name: str, shown: str) -> int:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return -1
    if stat.S_ISLNK(st.st_mode):
        raise Rejected(f"{shown} is a link; links are not accepted, submit plain files only")
    if not stat.S_ISDIR(st.st_mode):
        return -1
    return os.open(name, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW, dir_fd=parent_fd)


def _copy_from_dir(dir_fd: int, name: str, rel: str, dest: Path) -> int | None:
    """Copy one whitelisted file without following links; None if it is absent."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise Rejected(f"{rel} is a link; links are not accepted, submit the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise Rejected(f"{rel} is not a regular file (a device, pipe or folder); submit the file")
    cap = course.size_cap(rel)
    if st.st_size > cap:
        raise Rejected(f"{rel} is {st.st_size >> 10} KiB (limit {cap >> 10} KiB)")
    fd = os.open(name, os.O_RDONLY | _O_NOFOLLOW | _O_NONBLOCK, dir_fd=dir_fd)
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped after the stat
        os.close(fd)
        raise Rejected(f"{rel} changed while it was read; submit again")
    return copy_stream(os.fdopen(fd, "rb"), dest / rel, cap, rel)


def _unpack_folder(src: Path, staging: Path, allowed: frozenset[str]) -> Intake:
    intake = Intake(staging)
    root_fd = os.open(src, os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW)
    fds = [root_fd]
    try:
        total = 0
        by_dir: dict[str, list[str]] = {}
        for rel in sorted(allowed):
            parent, _, name = rel.rpartition("/")
            by_dir.setdefault(parent, []).append(name)
        for parent, names in by_dir.items():
            fd = root_fd
            shown = ""
            for part in parent.split("/"):
                shown = f"{shown}{part}/"
                fd = _open_dir(fd, part, shown.rstrip("/"))
                if fd < 0:
                    break
                fds.append(fd)
            if fd < 0:
                continue
            for name in names:
                rel = f"{parent}/{name}"
                size = _copy_from_dir(fd, name, rel, staging)
                if size is None:
                    continue
                total += size
                if total > MAX_TOTAL_BYTES:
                    raise Rejected(f"the kept files exceed {MAX_TOTAL_BYTES >> 20} MiB in total")
                intake.files.append(rel)
        intake.ignored = _list_ignored(src, allowed)
    finally:
        for fd in fds:
            os.close(fd)
    intake.files.sort()
    return intake


def _list_ignored(src: Path, allowed: frozenset[str], limit: int = 50) -> list[str]:
    """Up to `limit` paths of the folder that are not taken (walked without following links)."""
    ignored: list[str] = []
    for dirpath, dirnames, filenames in os.walk(src, followlinks=False):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            rel = os.path.relpath(os.path.join(dirpath, name), src).replace(os.sep, "/")
            if rel not in allowed:
                ignored.append(rel)
                if len(ignored) >= limit:
                    return ignored
    return ignored
