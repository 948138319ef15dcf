"""Where grading keeps its temporary folders, and how a killed run's folders are removed.

A student's work folder holds the hidden inputs of the run, so none may outlive the run.
Every folder lives under one grader-owned base, BASE_NAME-<uid> in the system temporary
folder (mode 0711: others may pass through to a folder they were given, never list it):

    <base>/run-<pid>-<random>/        one per grading run (autograde, Gradescope)
        .lock                         held (flock) by the run and its grading processes
        grade-<student>-<random>/     one per student, removed when the student is done

A run removes its own folder when it ends. A run killed with SIGKILL cannot, so every
run starts by removing the run folders whose lock nobody holds: those runs are gone (a run's
folder appears under its run- name only with its lock already held).
A live run (another instructor's, a parallel class) holds its lock and is left alone.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
from pathlib import Path

BASE_NAME = "cs-layers-grading"
_RUN_NAME = re.compile(r"^run-\d+-[0-9a-f]{12}$")
_current: Path | None = None  # the run folder of this process (inherited by forked workers)


def base_dir() -> Path:
    """The grader-owned base folder, created 0711 and checked (ours, a real folder)."""
    base = Path(tempfile.gettempdir()) / f"{BASE_NAME}-{os.getuid()}"
    try:
        os.mkdir(base, 0o711)
    except FileExistsError:
        pass
    st = os.lstat(base)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
        raise RuntimeError(f"{base} exists but is not a folder owned by this user (uid "
                           f"{os.getuid()}); remove it, or set TMPDIR to another folder")
    os.chmod(base, 0o711)
    return base


def rmtree(path: Path) -> None:
    """Remove a tree the sandbox made read-only in places (0555 folders, 0444 files).

    Only folders inside the tree are opened up to retry: never its parent. The parent is
    shared (the base folder, a run folder), and where `path` itself cannot go (a mount
    still attached below it), closing that parent to 0700 would lock the sandbox uids of
    every other job out of their own folders, mid-run (there are no namespaces under
    --sandbox none).
    """
    root = os.path.abspath(path)

    def fix(func, p, _exc):
        try:
            parent = os.path.dirname(p)
            if parent == root or parent.startswith(root + os.sep):
                os.chmod(parent, 0o700)
            if not os.path.islink(p) and os.path.isdir(p):
                os.chmod(p, 0o700)
            func(p)
        except OSError:
            pass
    shutil.rmtree(path, onerror=fix)


def mounts_below(path: Path) -> list[str]:
    """Mount points inside `path` (e.g. a student's size-limited tmpfs), deepest first."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:  # not Linux: nothing is mounted by the grader
        return []
    prefix = str(path) + "/"
    points = []
    for line in lines:
        fields = line.split()
        if len(fields) > 4:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point.startswith(prefix):
                points.append(point)
    return sorted(points, key=len, reverse=True)


def _unmount_below(path: Path) -> None:
    """Detach what a killed run left mounted inside its folder, so it can be removed."""
    umount = shutil.which("umount", path="/usr/bin:/bin:/usr/sbin:/sbin")
    for point in mounts_below(path):
        if umount:
            subprocess.run([umount, "-l", point], capture_output=True)


def remove_stale() -> list[Path]:
    """Remove the run folders of runs that are gone (nobody holds their lock); return them."""
    removed = []
    base = base_dir()
    for entry in sorted(base.iterdir()):
        if not _RUN_NAME.match(entry.name) or entry.is_symlink() or not entry.is_dir():
            continue
        try:
            fd = os.open(entry / ".lock", os.O_RDWR | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None  # killed before it took its lock: nobody can be using it
        except OSError:
            continue
        try:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a live run
        finally:
            if fd is not None:
                os.close(fd)
        rmtree(entry)  # the hidden inputs go first, even where a mount cannot be detached
        _unmount_below(entry)
        rmtree(entry)
        removed.append(entry)
    return removed


class Terminated(SystemExit):
    """SIGTERM arrived: the process stops, as after Ctrl-C (exit status 143)."""


def stop_on_signals() -> None:
    """The first SIGINT or SIGTERM stops this process: KeyboardInterrupt, or Terminated (a
    SystemExit with code 143), so that a polite kill still runs the `finally` blocks of
    run_folder and student_folder (which remove the hidden inputs) and of the sandbox (which
    kills the student's processes), and the grader can tell a stop from a library's sys.exit.
    Later signals are ignored: a second Ctrl-C, or the grader's SIGTERM to its grading
    processes after the terminal's SIGINT reached them too, would cut that cleanup short."""
    stopping = []

    def stop(signum, frame):
        if stopping:  # (not SIG_IGN: a signal already pending would then raise OSError)
            return
        stopping.append(signum)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise Terminated(128 + signum)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)


STOPS = (KeyboardInterrupt, Terminated)  # the grader is being stopped: grade nothing more


def exit_status(stop: BaseException) -> int:
    """The shell's exit status for a stop: 130 after Ctrl-C, 143 after SIGTERM."""
    return 128 + signal.SIGINT if isinstance(stop, KeyboardInterrupt) else stop.code


@contextlib.contextmanager
def run_folder():
    """This run's folder under the base: stale ones removed first, this one removed at exit."""
    global _current
    stale = remove_stale()
    base = base_dir()
    # made under a name remove_stale ignores, locked, then renamed: another run starting at
    # the same moment never sees this run's folder without its lock held
    new = Path(tempfile.mkdtemp(prefix=".new-run-", dir=base))
    fd = os.open(new / ".lock", os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)  # shared with forked grading processes until they exit
    os.chmod(new, 0o711)
    path = base / f"run-{os.getpid()}-{secrets.token_hex(6)}"
    os.rename(new, path)
    previous, _current = _current, path
    try:
        yield path, stale
    finally:
        _current = previous
        rmtree(path)
        os.close(fd)


@contextlib.contextmanager
def student_folder(student_id: str):
    """An empty private folder for one student, inside the current run folder."""
    if _current is None:  # called outside a run (a test, a single Gradescope submission)
        with run_folder():
            with student_folder(student_id) as path:
                yield path
        return
    path = Path(tempfile.mkdtemp(prefix=f"grade-{student_id}-", dir=_current))
    try:
        yield path
    finally:
        rmtree(path)
