"""One control group per sandboxed run: memory and process count of ALL its processes.

rlimits bound each process on its own (four processes under a 2 GiB RLIMIT_AS may still
take 8 GiB between them); a cgroup bounds their sum. cgroup v2 (a unified
/sys/fs/cgroup with the memory controller) is preferred; the v1 memory and pids
hierarchies are used where only they exist. Without either (no root, a read-only
/sys/fs/cgroup in a container) the run goes on with rlimits only, and
``available()`` says why.

    group = Group.create("run-123", memory_bytes=2 << 30, pids=64)   # or None
    Popen(..., preexec_fn=group.enter)       # the child joins before it execs
    ... group.oom_killed(), group.hit_limit(), group.peak_bytes()
    group.close()                            # kills what is left, removes the group
"""
from __future__ import annotations

import functools
import os
import secrets
import signal
import time
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
PARENT = "cs-layers-sandbox"  # our folder below the root (v2) or below each v1 hierarchy


def _write(path: Path, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read(path: Path) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _v2_root() -> Path | None:
    controllers = _read(ROOT / "cgroup.controllers").split()
    return ROOT if {"memory", "pids"} <= set(controllers) else None


def _v1_roots() -> tuple[Path, Path] | None:
    mem, pids = ROOT / "memory", ROOT / "pids"
    if (mem / "memory.limit_in_bytes").exists() and (pids / "cgroup.procs").exists():
        return mem, pids
    return None


class Group:
    """A cgroup (v2: one folder; v1: one folder in the memory and one in the pids hierarchy)."""

    def __init__(self, dirs: list[Path], v2: bool):
        self.dirs, self.v2 = dirs, v2

    @classmethod
    def create(cls, name: str, memory_bytes: int, pids: int) -> "Group | None":
        ok, _ = available()
        if not ok:
            return None
        name = f"{name}-{secrets.token_hex(4)}"
        v2 = _v2_root() is not None
        made: list[Path] = []
        try:
            if v2:
                parent = ROOT / PARENT
                parent.mkdir(exist_ok=True)
                _write(ROOT / "cgroup.subtree_control", "+memory +pids")
                _write(parent / "cgroup.subtree_control", "+memory +pids")
                dirs = [parent / name]
            else:
                mem_root, pids_root = _v1_roots()
                dirs = [mem_root / PARENT / name, pids_root / PARENT / name]
            for d in dirs:
                d.mkdir(parents=True)
                made.append(d)
            mem = dirs[0]
            if v2:
                _write(mem / "memory.max", str(memory_bytes))
                if (mem / "memory.swap.max").exists():
                    _write(mem / "memory.swap.max", "0")
            else:
                _write(mem / "memory.limit_in_bytes", str(memory_bytes))
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    _write(mem / "memory.memsw.limit_in_bytes", str(memory_bytes))
            _write(dirs[-1] / "pids.max", str(pids))
            return cls(dirs, v2)
        except OSError:
            cls(made, v2).close()
            return None

    def enter(self) -> None:
        """Move the calling process into the group (used as preexec_fn: the child, pre-exec)."""
        pid = str(os.getpid())
        for d in self.dirs:
            _write(d / "cgroup.procs", pid)

    def pids(self) -> list[int]:
        found = set()
        for d in self.dirs:
            found |= {int(p) for p in _read(d / "cgroup.procs").split()}
        return sorted(found)

    def oom_killed(self) -> bool:
        d = self.dirs[0]
        if self.v2:
            events = dict(line.split() for line in _read(d / "memory.events").splitlines() if line)
            return int(events.get("oom_kill", 0)) > 0
        ctl = dict(line.split() for line in _read(d / "memory.oom_control").splitlines() if line)
        return int(ctl.get("oom_kill", 0)) > 0

    def hit_limit(self) -> bool:
        """Did the group's memory use reach its limit at any time (reclaim or OOM)?"""
        d = self.dirs[0]
        if self.v2:
            events = dict(line.split() for line in _read(d / "memory.events").splitlines() if line)
            return int(events.get("max", 0)) > 0 or int(events.get("oom_kill", 0)) > 0
        return int(_read(d / "memory.failcnt") or 0) > 0

    def peak_bytes(self) -> int | None:
        name = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        text = _read(self.dirs[0] / name).strip()
        return int(text) if text.isdigit() else None

    def kill(self, timeout: float = 10.0) -> None:
        """SIGKILL every process in the group until it is empty."""
        if self.v2 and (self.dirs[0] / "cgroup.kill").exists():
            try:
                _write(self.dirs[0] / "cgroup.kill", "1")
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids or time.monotonic() > deadline:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.01)

    def close(self) -> None:
        self.kill()
        for d in self.dirs:
            for _ in range(100):  # the kernel frees an emptied group shortly after
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)


def _parents() -> list[Path]:
    return [ROOT / PARENT] if _v2_root() is not None else [r / PARENT for r in _v1_roots()]


def group_names() -> list[str]:
    """The names of our groups (in any hierarchy), live or left by a killed grader."""
    if not available()[0]:
        return []
    names = set()
    for parent in _parents():
        names |= {d.name for d in parent.iterdir() if d.is_dir()} if parent.is_dir() else set()
    return sorted(names)


def remove_if_empty(name: str) -> None:
    """Remove the group `name` where no process uses it. Only for a group whose run is known to
    be gone: a live run's group is empty too between its creation and its worker's start."""
    for parent in _parents():
        d = parent / name
        if d.is_dir() and not _read(d / "cgroup.procs").split():
            try:
                d.rmdir()
            except OSError:
                pass  # in use again, or not empty of children


@functools.lru_cache(maxsize=1)
def available() -> tuple[bool, str]:
    """(usable, explanation) of per-run control groups on this machine."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False, "the grader is not root, so it cannot create control groups"
    if _v2_root() is not None:
        kind, probe_dirs = "cgroup v2", [ROOT]
    elif _v1_roots() is not None:
        kind, probe_dirs = "cgroup v1 (memory + pids hierarchies)", list(_v1_roots())
    else:
        return False, f"no memory and pids cgroup controllers under {ROOT}"
    for d in probe_dirs:
        if not os.access(d, os.W_OK):
            return False, f"{d} is read-only here ({kind}); e.g. a container without cgroup rights"
    return True, kind
