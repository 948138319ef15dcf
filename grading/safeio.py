"""Read what the sandboxed user wrote, without ever blocking or trusting it.

Everything under a work folder may have been created or changed by student code: a file
can be a FIFO (open() would block forever), a device, a socket, a link, huge, or hold
JSON nested a million levels deep. Every grader read of sandbox output goes through here:

    data = read_bounded(path, max_bytes)       # bytes, or raises Unsafe with a reason
    obj = load_json(path, max_bytes)           # a parsed JSON value, or raises Unsafe
    arr = load_npy(path, max_bytes)            # a numeric ndarray (no pickle), or raises Unsafe
    copy_bounded(src, dest, max_bytes)         # a private copy of a regular file

The file is opened with O_NONBLOCK | O_NOFOLLOW (a FIFO opens at once, a link fails),
checked with fstat (regular files only), and its size is checked before its contents are
read. Unsafe's message blames the submission and never shows the file's contents.
"""
from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

MAX_JSON_DEPTH = 32  # deeper nesting is refused before json.loads sees it


class Unsafe(Exception):
    """A sandbox-written file that cannot be used (the message says why, for the student)."""


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISDIR, "a folder"), (stat.S_ISLNK, "a link")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: Path, max_bytes: int) -> tuple[int, int]:
    """(fd, size) of a regular file no larger than max_bytes; never blocks, never follows a link."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0) \
        | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise Unsafe(f"{Path(path).name} was not written") from None
    except OSError as err:  # ELOOP: a link; EACCES, ENXIO (a socket), ...
        raise Unsafe(f"{Path(path).name} could not be opened safely ({os.strerror(err.errno or 0)}); "
                     "it is not a regular file") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise Unsafe(f"{Path(path).name} is {_kind(st.st_mode)}, not a regular file")
        if st.st_size > max_bytes:
            raise Unsafe(f"{Path(path).name} holds {st.st_size} bytes, more than the "
                         f"{max_bytes} allowed")
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_bounded(path: Path, max_bytes: int) -> bytes:
    """The contents of a regular file of at most max_bytes (a file still growing is cut)."""
    fd, size = open_regular(path, max_bytes)
    try:
        chunks, left = [], max_bytes + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError as err:
        raise Unsafe(f"{Path(path).name} could not be read ({os.strerror(err.errno or 0)})") from None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise Unsafe(f"{Path(path).name} grew past {max_bytes} bytes while it was read")
    return data


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings (without recursion)."""
    depth = deepest = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def loads_json(data: bytes, name: str = "the file", max_depth: int = MAX_JSON_DEPTH):
    """Parse untrusted JSON bytes; Unsafe for bad UTF-8, bad JSON or nesting deeper than max_depth."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise Unsafe(f"{name} is not UTF-8 text") from None
    if json_depth(text) > max_depth:
        raise Unsafe(f"{name} is nested more than {max_depth} levels deep")
    try:
        return json.loads(text)
    except (ValueError, RecursionError, MemoryError):
        raise Unsafe(f"{name} is not valid JSON") from None


def load_json(path: Path, max_bytes: int, max_depth: int = MAX_JSON_DEPTH):
    return loads_json(read_bounded(path, max_bytes), Path(path).name, max_depth)


def load_npy(path: Path, max_bytes: int):
    """A numeric ndarray from an .npy file (allow_pickle=False), read into memory first."""
    import numpy as np

    data = read_bounded(path, max_bytes)
    try:
        arr = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception:  # noqa: BLE001 - any parse failure is the submission's fault
        raise Unsafe(f"{Path(path).name} is not a valid numeric .npy array") from None
    if not isinstance(arr, np.ndarray):
        raise Unsafe(f"{Path(path).name} is not a single array")
    return arr


def copy_bounded(src: Path, dest: Path, max_bytes: int) -> None:
    """Copy a sandbox-written regular file to a private dest (created 0600), size-checked."""
    fd, _ = open_regular(src, max_bytes)
    try:
        out = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            copied = 0
            while True:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    break
                copied += len(chunk)
                if copied > max_bytes:
                    raise Unsafe(f"{Path(src).name} grew past {max_bytes} bytes while it was copied")
                os.write(out, chunk)
        finally:
            os.close(out)
    finally:
        os.close(fd)
