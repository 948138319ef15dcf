"""Run an untrusted command with the operating system's isolation.

Layers (each reported by ``detect_layers()``; a missing one is logged loudly
and the others are kept):

- mount namespace: a fresh tmpfs root that holds only the Python installation
  (read-only), the working folder (read-write) and a minimal /dev and /proc.
  The instructor repository, the hidden tests, the gradebook, other
  submissions, /root, /home and /tmp are simply not there.
- network namespace: no interfaces but a down loopback.
- unprivileged user: when the grader runs as root the command runs as a
  throw-away uid (a fresh one per run, so one student's fork bomb cannot use up
  another's process limit).
- rlimits: CPU, address space, processes, file size, open files, no core files.
- isolated interpreter: callers run ``python -I -S -B`` (see worker.py).

- memory cgroup: memory and process count summed over all of a run's processes
  (grading.cgroups; v2 or v1, as root).
- disk quota: each submission's folders on a size-limited tmpfs (``bounded_folder``).

Backends (``set_mode``, the ``--sandbox`` option; ``auto`` picks the first that works):
bubblewrap (``bwrap``), util-linux ``unshare`` (+ ``chroot``, ``setpriv``,
``prlimit``), and ``none``: no namespaces, but still a throw-away uid (a flock'd
lease, ``uid_lease``), rlimits, the cgroup, and every process of that uid killed
before the grader reads results. Without a uid to drop to, ``check_mode`` refuses
to run student code unless the mode is ``unsafe``. The wall-clock limit kills the
whole process group and, with a pid namespace, everything inside it. Output goes
to a private file outside the sandbox; only its tail comes back.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

log = logging.getLogger(__name__)

LAYER_NAMES = (
    "mount namespace",
    "network namespace",
    "unprivileged user",
    "rlimits",
    "isolated interpreter",
    "memory cgroup",
    "disk quota",
)
_UID_BASE, _UID_SPAN = 200_000, 100_000  # throw-away uids for sandboxed runs as root
MODES = ("auto", "bwrap", "unshare", "none", "unsafe")
MODE_ENV = "CS_LAYERS_SANDBOX"  # the --sandbox setting, inherited by grading processes
_WORLD_WRITABLE = ("/tmp", "/var/tmp", "/dev/shm")  # where a uid without namespaces can write
_DEV_FILES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")
_EXTRA_RO_FILES = ("/etc/ld.so.cache",)
_SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class Limits:
    cpu_s: int = 20  # RLIMIT_CPU of the worker (SIGXCPU, then SIGKILL one second later)
    wall_s: float = 30.0  # wall clock for the whole run; kills the process group / namespace
    memory_mb: int = 2048  # RLIMIT_AS (virtual memory) in MiB
    nproc: int = 16  # RLIMIT_NPROC (processes + threads of the sandbox uid)
    fsize_mb: int = 64  # RLIMIT_FSIZE: largest file (including captured output) in MiB
    output_kb: int = 64  # how much of the output's tail comes back in RunResult
    total_memory_mb: int | None = None  # all processes together (cgroup, where available);
    #                                     None: memory_mb


@dataclass(frozen=True)
class RunResult:
    returncode: int
    status: str  # "ok" | "timeout" | "memory" | "crash"
    output_tail: str  # last output_kb of stdout+stderr (untrusted text)
    duration_s: float
    missing_layers: tuple[str, ...] = ()  # isolation layers that were not active
    uid: int | None = None  # the throw-away uid it ran as (None: the grader's own)
    peak_memory_mb: float | None = None  # all processes together (None: no cgroup here)
    signal: int = 0  # the signal that ended it (0: it exited); inside namespaces, from exit code 128+n


def _python_ro_paths() -> list[str]:
    """The interpreter's installation: base prefix, venv prefix, site-packages."""
    paths = {os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix), sys.prefix}
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        paths.add(os.path.realpath(sysconfig.get_paths()[key]))
    exe = Path(sys.executable)
    paths.add(str(exe.parent))
    paths.add(os.path.dirname(os.path.realpath(exe)))
    return sorted(p for p in paths if os.path.exists(p))


def _system_ro_paths() -> list[str]:
    return [p for p in ("/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32") if os.path.lexists(p)]


def _euid_is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


@dataclass(frozen=True)
class Host:
    """What this machine offers the sandbox. HOST is the real one; a test describes another
    machine by passing its own to check_mode, detect_layers and run_sandboxed (or by setting
    HOST, for a path that goes through the autograder).

    - root: the grader runs as root (it can hand student code a throw-away uid)
    - namespaces: namespace backends (bwrap, unshare) may be tried; False: as on a machine
      without them
    - probe: (host, backend, userns) -> (works, why); default probe_backend, which runs `true`
      through the backend's whole chain once
    """

    root: bool = field(default_factory=_euid_is_root)
    namespaces: bool = True
    probe: Callable[..., tuple[bool, str]] | None = None

    def try_backend(self, backend: str, userns: bool = False) -> tuple[bool, str]:
        return (self.probe or probe_backend)(self, backend, userns)


HOST = Host()


def _default_env(workdir: Path) -> dict[str, str]:
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "OPENBLAS_NUM_THREADS": "1",  # threads count against RLIMIT_NPROC
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "MPLBACKEND": "Agg",
    }


def _prlimit_args(limits: Limits) -> list[str]:
    mem = limits.memory_mb * 1024 * 1024
    fsize = limits.fsize_mb * 1024 * 1024
    return [
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--as={mem}:{mem}",
        f"--nproc={limits.nproc}:{limits.nproc}",
        f"--fsize={fsize}:{fsize}",
        "--nofile=256:256",
        "--core=0:0",
    ]


def _setpriv_args(uid: int) -> list[str]:
    return [
        _which("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs", "--",
    ]


def _inner_command(argv: Sequence[str], workdir: Path, env: dict[str, str], limits: Limits,
                   uid: int | None) -> list[str]:
    """env -i --chdir=W VARS prlimit LIMITS -- [setpriv UID --] argv (run inside the new root)."""
    cmd = ["/usr/bin/env", "-i", f"--chdir={workdir}"]
    cmd += [f"{k}={v}" for k, v in env.items()]
    cmd += [_which("prlimit"), *_prlimit_args(limits), "--"]
    if uid is not None:
        cmd += _setpriv_args(uid)
    return cmd + list(argv)


def _which(tool: str) -> str:
    """Absolute path of a system tool (sbin included), or the bare name."""
    return shutil.which(tool, path=_SYSTEM_PATH) or tool


def _unshare_command(argv, workdir: Path, env, limits: Limits, ro_paths, uid, root_dir: Path,
                     userns: bool) -> list[str]:
    """unshare (mount, net, pid, ipc, uts) + a small sh script that builds the new root."""
    q = shlex.quote
    R = q(str(root_dir))
    lines = [
        "set -eu",
        f"R={R}",
        'mount -t tmpfs -o mode=0755,size=16m,nosuid,nodev sandbox-root "$R"',
        'ro() { if [ -d "$1" ]; then mkdir -p "$R$1"; else mkdir -p "$R$(dirname "$1")"; : > "$R$1"; fi;'
        ' mount --rbind "$1" "$R$1"; mount -o remount,bind,ro,nosuid,nodev "$R$1"; }',
    ]
    for p in _system_ro_paths():
        if os.path.islink(p):  # merged /usr: /bin -> usr/bin
            lines.append(f'ln -s {q(os.readlink(p))} "$R"{q(p)}')
        else:
            lines.append(f"ro {q(p)}")
    for p in list(ro_paths) + [f for f in _EXTRA_RO_FILES if os.path.exists(f)]:
        lines.append(f"ro {q(str(p))}")
    lines += [
        f'mkdir -p "$R"{q(str(workdir))}',
        f'mount --bind {q(str(workdir))} "$R"{q(str(workdir))}',
        'mkdir -p "$R/dev" "$R/proc"',
    ]
    for d in _DEV_FILES:
        lines.append(f': > "$R{d}"; mount --bind {d} "$R{d}"')
    lines += [
        'mount -t proc -o nosuid,nodev,noexec proc "$R/proc"',
        'mount -o remount,ro,nosuid,nodev "$R"',
        "rc=0",
        f'{_which("chroot")} "$R" {shlex.join(_inner_command(argv, workdir, env, limits, uid))} || rc=$?',
        "exit $rc",
    ]
    flags = ["--mount", "--net", "--pid", "--ipc", "--uts", "--fork", "--kill-child"]
    if userns:
        flags = ["--user", "--map-root-user"] + flags
    return [_which("unshare"), *flags, "--", "/bin/sh", "-c", "\n".join(lines)]


def _bwrap_command(argv, workdir: Path, env, limits: Limits, ro_paths, uid, root: bool) -> list[str]:
    cmd = [_which("bwrap"), "--die-with-parent", "--new-session", "--unshare-ipc", "--unshare-pid",
           "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
    if not root:
        cmd.append("--unshare-user")
    extra = [str(p) for p in ro_paths] + [f for f in _EXTRA_RO_FILES if os.path.exists(f)]
    parents = sorted({str(a) for p in extra + [str(workdir)] for a in Path(p).parents} - {"/"})
    for d in parents:  # bwrap would create them 0700 as root: the sandbox uid must traverse them
        cmd += ["--perms", "0755", "--dir", d]
    for p in _system_ro_paths():
        if os.path.islink(p):
            cmd += ["--symlink", os.readlink(p), p]
        else:
            cmd += ["--ro-bind", p, p]
    for p in extra:
        cmd += ["--ro-bind", p, p]
    cmd += ["--bind", str(workdir), str(workdir), "--dev", "/dev", "--proc", "/proc",
            "--remount-ro", "/", "--clearenv", "--chdir", str(workdir), "--"]
    return cmd + _inner_command(argv, workdir, env, limits, uid)


def _plain_command(argv, workdir: Path, env, limits: Limits, uid) -> list[str]:
    """No namespaces: rlimits (+ uid drop as root) through prlimit/setpriv where present."""
    if shutil.which("prlimit", path=_SYSTEM_PATH) and shutil.which("env", path=_SYSTEM_PATH):
        cmd = [_which("env"), "-i", f"--chdir={workdir}", *[f"{k}={v}" for k, v in env.items()],
               "prlimit", *_prlimit_args(limits), "--"]
        if uid is not None:
            cmd += _setpriv_args(uid)
        return cmd + list(argv)
    return list(argv)  # rlimits then come from preexec_fn (macOS)


def _rlimit_preexec(limits: Limits):
    import resource

    def apply():
        mem = limits.memory_mb * 1024 * 1024
        for name, soft, hard in (
            ("RLIMIT_CPU", limits.cpu_s, limits.cpu_s + 1),
            ("RLIMIT_AS", mem, mem),
            ("RLIMIT_NPROC", limits.nproc, limits.nproc),
            ("RLIMIT_FSIZE", limits.fsize_mb * 1024 * 1024, limits.fsize_mb * 1024 * 1024),
            ("RLIMIT_CORE", 0, 0),
        ):
            if hasattr(resource, name):
                try:
                    resource.setrlimit(getattr(resource, name), (soft, hard))
                except (ValueError, OSError):
                    pass  # e.g. RLIMIT_AS is not settable on macOS
    return apply


def probe_backend(host: Host, backend: str, userns: bool = False) -> tuple[bool, str]:
    """Run `true` through the full sandbox chain once; (works, reason)."""
    with tempfile.TemporaryDirectory(prefix="sandbox-probe-") as tmp, contextlib.ExitStack() as stack:
        work, root = Path(tmp, "work"), Path(tmp, "root")
        work.mkdir()
        root.mkdir()
        uid = None
        if host.root and shutil.which("setpriv", path=_SYSTEM_PATH):
            # a leased uid like any run's: no other run holds it, and no reaper takes the probe
            # for a dead grader's orphan
            try:
                uid = stack.enter_context(uid_lease()) if _euid_is_root() else _UID_BASE
            except SandboxRefused as err:  # no private lock folder: a run would refuse too
                return False, f"{backend} probe: {err}"
            stack.callback(_wait_uid_gone, uid, 5.0)
        limits = Limits(wall_s=20)
        argv = ["/bin/sh", "-c", "true"]
        if backend == "bwrap":
            cmd = _bwrap_command(argv, work, {}, limits, (), uid, host.root)
        else:
            cmd = _unshare_command(argv, work, {}, limits, (), uid, root, userns)
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=20, env={"PATH": _SYSTEM_PATH})
        except (OSError, subprocess.TimeoutExpired) as e:
            return False, f"{backend} failed to start: {e}"
        if p.returncode != 0:
            err = p.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["(no message)"]
            return False, f"{backend} probe exited {p.returncode}: {err[0]}"
        return True, f"{backend} works"


class SandboxRefused(RuntimeError):
    """Student code must not run with this setting on this machine (the message says why)."""


def mode() -> str:
    """The --sandbox setting in force: auto (default), bwrap, unshare, none or unsafe."""
    m = os.environ.get(MODE_ENV, "auto") or "auto"
    return m if m in MODES else "auto"


def set_mode(new: str) -> None:
    """Choose the backend (`--sandbox`); inherited by forked and spawned grading processes."""
    if new not in MODES:
        raise ValueError(f"--sandbox {new!r}: choose one of {', '.join(MODES)}")
    os.environ[MODE_ENV] = new


def can_drop_privileges(host: Host | None = None) -> bool:
    return (host or HOST).root and shutil.which("setpriv", path=_SYSTEM_PATH) is not None


def backend(host: Host | None = None) -> tuple[str | None, bool, str]:
    """(backend, userns, why) for mode() on `host` (default HOST): backend is 'bwrap',
    'unshare' or None. Probed once per host and mode in a process."""
    return _backend_for(host or HOST, mode())


@functools.lru_cache(maxsize=16)
def _backend_for(host: Host, m: str) -> tuple[str | None, bool, str]:
    if m in ("none", "unsafe"):
        return None, False, f"--sandbox {m}: no namespaces by choice"
    if not host.namespaces:
        return None, False, "namespace backends are off on this host"
    if not sys.platform.startswith("linux"):
        return None, False, f"no Linux namespaces on {sys.platform}"
    reasons = []
    needed = ["unshare", "chroot", "prlimit", "env", "mount"] + (["setpriv"] if host.root else [])
    if m in ("auto", "bwrap"):
        if shutil.which("bwrap", path=_SYSTEM_PATH) and shutil.which("prlimit", path=_SYSTEM_PATH):
            ok, why = host.try_backend("bwrap")
            if ok:
                return "bwrap", False, "bubblewrap"
            reasons.append(why)
        else:
            reasons.append("bwrap not installed (Debian: apt-get install -y bubblewrap)")
        if m == "bwrap":
            return None, False, "; ".join(reasons)
    missing = [t for t in needed if not shutil.which(t, path=_SYSTEM_PATH)]
    if missing:
        reasons.append(f"missing {', '.join(missing)} (Debian: util-linux, coreutils)")
        return None, False, "; ".join(reasons)
    ok, why = host.try_backend("unshare", userns=False)
    if ok:
        return "unshare", False, "util-linux unshare" + (f" ({reasons[0]})" if reasons else "")
    reasons.append(why)
    if not host.root:
        ok, why = host.try_backend("unshare", userns=True)
        if ok:
            return "unshare", True, "util-linux unshare in a user namespace (unshare -U -r)"
        reasons.append(why)
    return None, False, "; ".join(reasons)


def check_mode(host: Host | None = None) -> str:
    """The backend student code will run under ('bwrap', 'unshare', 'none' or 'unsafe').

    Raises SandboxRefused when the requested backend does not work here, or when no
    namespace backend is used and the grader cannot drop privileges to a throw-away uid
    (not root, or no setpriv): student code would then run as the grader itself, able to
    read the reference and rewrite the results. `--sandbox unsafe` accepts that risk.
    """
    host = host or HOST
    m = mode()
    chosen, _, why = backend(host)
    if chosen is not None:
        return chosen
    if m in ("bwrap", "unshare"):
        raise SandboxRefused(f"--sandbox {m} does not work on this machine: {why}. Install it "
                             "(Debian: apt-get install -y bubblewrap util-linux), or choose "
                             "--sandbox auto / none")
    if m == "unsafe":
        return "unsafe"
    if can_drop_privileges(host):
        return "none"
    who = "the grader is not root" if not host.root else "setpriv (util-linux) is missing"
    raise SandboxRefused(
        f"refusing to run student code: no namespace sandbox here ({why}) and {who}, so "
        "student code would run as the grader's own user, able to read the reference "
        "solution and rewrite the results. Grade as root (the code then runs as a throw-away "
        "uid), install bubblewrap, or pass --sandbox unsafe on a machine you can throw away")


def redetect() -> None:
    """Forget what was probed (backends, layers): the next call probes again and logs again."""
    _backend_for.cache_clear()
    _layers_for.cache_clear()


def detect_layers(host: Host | None = None) -> dict[str, tuple[bool, str]]:
    """Which isolation layers are active on `host` (default HOST), and why one is missing.

    Returns {layer name: (active, explanation)} for LAYER_NAMES. Logs a warning
    for each missing layer (once per process, host and mode).
    """
    return _layers_for(host or HOST, mode())


@functools.lru_cache(maxsize=16)
def _layers_for(host: Host, m: str) -> dict[str, tuple[bool, str]]:
    chosen, userns, why = _backend_for(host, m)
    ns = chosen is not None
    if host.root:
        uid_layer = (
            (True, f"runs as a fresh uid >= {_UID_BASE} (setpriv)") if shutil.which("setpriv", path=_SYSTEM_PATH)
            else (False, "grader runs as root and setpriv is missing: install util-linux")
        )
    elif hasattr(os, "geteuid") and ns:
        uid_layer = (True, f"grader runs as uid {os.geteuid()} (not root); the worker keeps it "
                           "inside its own namespaces")
    elif hasattr(os, "geteuid"):
        uid_layer = (False, f"grader runs as uid {os.geteuid()} (not root) without namespaces: "
                            "student code runs as the grader's own user (--sandbox unsafe only)")
    else:
        uid_layer = (False, "no POSIX users on this platform")
    try:
        import resource  # noqa: F401
        via = " via prlimit" if shutil.which("prlimit", path=_SYSTEM_PATH) else ""
        rl = (True, "RLIMIT_CPU/AS/NPROC/FSIZE/CORE" + via)
        if sys.platform == "darwin":
            rl = (True, "RLIMIT_CPU/NPROC/FSIZE/CORE (macOS does not enforce RLIMIT_AS)")
    except ImportError:
        rl = (False, "no resource module on this platform")
    layers = {
        "mount namespace": (ns, f"{why}: only Python + the working folder are visible" if ns
                            else f"no mount namespace: {why}; student code can read any file "
                                 "this user can read (install bubblewrap or util-linux)"),
        "network namespace": (ns, "no network interfaces" if ns
                              else f"no network namespace: {why}; student code can reach the network"),
        "unprivileged user": uid_layer,
        "rlimits": rl,
        "isolated interpreter": (True, "python -I -S -B: no user site, no PYTHON* variables, "
                                       "no .pth files, student package first on sys.path"),
        "memory cgroup": _cgroup_layer(),
        "disk quota": _disk_layer(),
    }
    for name, (active, reason) in layers.items():
        if not active:
            log.warning("SANDBOX LAYER MISSING: %s: %s", name, reason)
    return layers


def _cgroup_layer() -> tuple[bool, str]:
    from grading import cgroups
    ok, why = cgroups.available()
    if ok:
        return True, f"{why}: memory (no swap) and process count summed over all of a run's processes"
    return False, (f"{why}; memory is bounded per process only (RLIMIT_AS), so several "
                   "processes of one run may together use more")


def _disk_layer() -> tuple[bool, str]:
    ok, why = tmpfs_works()
    if ok:
        return True, "each submission's folders sit on their own size-limited tmpfs"
    return False, (f"{why}; disk is bounded per file only (RLIMIT_FSIZE) and by the number of "
                   "files a run can make before its deadline")


@functools.lru_cache(maxsize=1)
def tmpfs_works() -> tuple[bool, str]:
    """Can the grader mount a size-limited tmpfs (root with CAP_SYS_ADMIN on Linux)?"""
    if not sys.platform.startswith("linux") or not _euid_is_root():
        return False, "the grader cannot mount a tmpfs (not root on Linux)"
    with tempfile.TemporaryDirectory(prefix="tmpfs-probe-") as d:
        if not _mount_tmpfs(Path(d), 1):
            return False, "mounting a tmpfs is not allowed here (a container without CAP_SYS_ADMIN?)"
        _umount(Path(d))
    return True, "tmpfs"


def _mount_tmpfs(path: Path, size_mb: int) -> bool:
    r = subprocess.run([_which("mount"), "-t", "tmpfs", "-o",
                        f"size={size_mb}m,mode=0700,nosuid,nodev", "cs-layers-work", str(path)],
                       capture_output=True, env={"PATH": _SYSTEM_PATH})
    return r.returncode == 0


def _umount(path: Path) -> None:
    subprocess.run([_which("umount"), "-l", str(path)], capture_output=True,
                   env={"PATH": _SYSTEM_PATH})


@contextlib.contextmanager
def bounded_folder(path: Path, size_mb: int):
    """Mount a size_mb tmpfs on the empty folder `path` for the block (disk bound per submission).

    Yields True when the bound holds, False when tmpfs cannot be mounted here (the folder
    is then used as it is). Unmounted (lazily) at the end, whatever happened.
    """
    global _BOUNDED
    path = Path(path)
    mounted = tmpfs_works()[0] and _mount_tmpfs(path, size_mb)
    _BOUNDED = path if mounted else None
    try:
        yield mounted
    finally:
        _BOUNDED = None
        if mounted:
            _umount(path)


_BOUNDED: Path | None = None  # the tmpfs of the submission being graded (disk use is sampled)
_USAGE: dict[str, float] = {}  # peaks since reset_usage(), over the runs of this process


def reset_usage() -> None:
    _USAGE.clear()


def usage() -> dict[str, float]:
    """Peaks since reset_usage(): peak_memory_mb (all processes of a run, cgroup) and
    peak_disk_mb (the submission's tmpfs), where this machine can measure them."""
    return dict(_USAGE)


def _note(key: str, value: float | None) -> None:
    if value is not None:
        _USAGE[key] = max(_USAGE.get(key, 0.0), round(value, 1))


def _sample_disk() -> None:
    if _BOUNDED is not None:
        try:
            st = os.statvfs(_BOUNDED)
        except OSError:
            return
        _note("peak_disk_mb", (st.f_blocks - st.f_bfree) * st.f_frsize / 2**20)


def missing_layers(host: Host | None = None) -> tuple[str, ...]:
    return tuple(name for name, (ok, _) in detect_layers(host).items() if not ok)


def _open_parents(path: Path) -> None:
    """Without a mount namespace the sandbox uid must traverse every parent of its folder.

    A parent the grader owns that others cannot enter (mkdtemp makes 0700 folders) gets
    o+x only: traversable, not listable. A parent owned by someone else that is closed
    stops the run: the student's code would otherwise run as the grader's uid.
    """
    for p in reversed(path.parents):
        st = os.stat(p)
        if st.st_mode & 0o001:
            continue
        if st.st_uid != os.geteuid():
            raise SandboxRefused(f"{p} (owner uid {st.st_uid}) cannot be entered by other users, "
                                 f"so the sandbox uid cannot reach {path}; grade in a folder "
                                 "below world-traversable folders")
        os.chmod(p, stat.S_IMODE(st.st_mode) | 0o001)


def interpreter_reachable() -> bool:
    """Can other users reach this Python's real executable (needed to re-exec it without
    namespaces, e.g. nbgrader starting a kernel)? A pyenv under a 0700 /root cannot."""
    real = Path(os.path.realpath(sys.executable))
    return all(os.stat(p).st_mode & 0o001 for p in real.parents)


def _lock_dir() -> Path:
    """A root-owned 0700 folder of per-uid lock files (shared by all grader processes)."""
    for base in ("/run", tempfile.gettempdir()):
        d = Path(base, "cs-layers-sandbox-uids")
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            pass
        except OSError:
            continue
        st = os.lstat(d)
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077:
            return d
    raise SandboxRefused("no private folder for the sandbox uid locks (/run or the temp folder "
                         "holds a cs-layers-sandbox-uids that is not root's and 0700); remove it")


def _try_lock(path: Path, create: bool = False) -> int | None:
    """An fd holding path's flock, or None when another run holds it (or, unless create,
    when the lock file does not exist)."""
    import fcntl

    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, 0o600)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextlib.contextmanager
def uid_lease():
    """A throw-away uid no other run (in any grader process) holds: flock'd for the run.

    A uid that still owns processes (left by a killed grader) is never handed out.
    """
    d = _lock_dir()
    for _ in range(1000):
        uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
        fd = _try_lock(d / f"{uid}.lock", create=True)
        if fd is None:
            continue
        if uid_processes(uid):
            os.close(fd)
            continue
        try:
            yield uid
        finally:
            os.close(fd)  # releases the lock
        return
    raise SandboxRefused("no free sandbox uid after 1000 tries; are thousands of runs going on?")


def reap_orphans() -> list[int]:
    """Kill what runs of a killed grader left: processes of sandbox uids no live run holds,
    and their control groups.

    A live run (in any grader process) holds its uid's lock from before its first process
    starts until its last one is gone; a uid whose lock can be taken but that still owns
    processes belongs to a grader that died mid-run. Returns those uids. One pass over
    /proc finds the sandbox uids that own processes, so the cost does not grow with the
    lock files that earlier runs left. Nothing of a live run is touched: not its processes,
    not its files, not its control group (which stays empty until its worker enters it).
    """
    if not can_drop_privileges():
        return []
    reaped = []
    d = _lock_dir()
    for uid in sorted(_sandbox_uids_with_processes()):
        fd = _try_lock(d / f"{uid}.lock")
        if fd is None:
            continue  # a live run holds it (or no run of ours ever used this uid)
        try:
            if uid_processes(uid):
                kill_uid(uid)
                remove_uid_files(uid)
                reaped.append(uid)
            # the lock file stays: unlinking it could let two runs lock two files of one uid
        finally:
            os.close(fd)
    _remove_dead_groups(d)
    return reaped


def _remove_dead_groups(lock_dir: Path) -> None:
    """Remove the empty control groups of runs that are gone: a uid's group while holding the
    uid's lock (so no live run of that uid can be creating or entering it), a grader pid's
    group when that process has exited."""
    from grading import cgroups
    for name in cgroups.group_names():
        owner = _GROUP_NAME.fullmatch(name)
        if owner is None:
            continue  # not a run's group: leave it alone
        number = int(owner.group(2))
        kind = owner.group(1) or ("uid" if _UID_BASE <= number < _UID_BASE + _UID_SPAN else "pid")
        if kind == "pid":
            if _pid_alive(number):
                continue
            cgroups.remove_if_empty(name)
            continue
        fd = _try_lock(lock_dir / f"{number}.lock")
        if fd is None:
            continue
        try:
            cgroups.remove_if_empty(name)
        finally:
            os.close(fd)


def _group_name(uid: int | None) -> str:
    """The control group name of a run (made unique by cgroups.Group.create): its owner."""
    return f"run-uid{uid}" if uid is not None else f"run-pid{os.getpid()}"


_GROUP_NAME = re.compile(r"run-(uid|pid)?(\d+)-[0-9a-f]+")  # (older graders: run-<n>-...)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def kill_uid(uid: int, timeout: float = 10.0) -> int:
    """SIGKILL every process of uid until none is left (they may fork meanwhile); count killed."""
    deadline = time.monotonic() + timeout
    killed = 0
    while True:
        pids = uid_processes(uid)
        if not pids:
            return killed
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)  # only pids owned by this run's throw-away uid
                killed += 1
            except OSError:
                pass
        if time.monotonic() > deadline:
            log.warning("sandbox uid %d still has processes after %.0f s", uid, timeout)
            return killed
        time.sleep(0.01)


def remove_uid_files(uid: int, places=_WORLD_WRITABLE) -> list[str]:
    """Delete what uid left in the world-writable folders (no namespaces: /tmp is shared)."""
    removed = []
    for place in places:
        try:
            entries = list(os.scandir(place))
        except OSError:
            continue
        for e in entries:
            try:
                if e.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if e.is_dir(follow_symlinks=False):
                    shutil.rmtree(e.path, ignore_errors=True)
                else:
                    os.unlink(e.path)
                removed.append(e.path)
            except OSError:
                pass
    return removed


def close_to_others(paths) -> list[str]:
    """chmod o-rwx the given folders/files (the grader's secrets when there are no namespaces)."""
    changed = []
    for p in paths:
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if stat.S_ISLNK(st.st_mode) or not st.st_mode & 0o007:
            continue
        os.chmod(p, stat.S_IMODE(st.st_mode) & ~0o007)
        changed.append(str(p))
    return changed


def _signal(rc: int, namespaced: bool) -> int:
    """The signal that ended a run (0: none); a namespace's init reports it as exit 128+n."""
    return -rc if rc < 0 else (rc - 128 if namespaced and rc > 128 else 0)


def _classify(rc: int, timed_out: bool, tail: str, namespaced: bool) -> str:
    if timed_out:
        return "timeout"
    if rc == 0:
        return "ok"
    sig = _signal(rc, namespaced)
    if sig in (signal.SIGXCPU, signal.SIGKILL):
        return "timeout"
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        return "memory"
    return "crash"


def run_sandboxed(argv: Sequence[str], *, workdir: Path, limits: Limits, ro_paths=(),
                  env: dict[str, str] | None = None, writable: Sequence[str] = ("",),
                  watchdog: Callable[[], str | None] | None = None, host: Host | None = None) -> RunResult:
    """Run argv inside the sandbox, with workdir (absolute) as its working folder.

    Inputs:
    - argv: the command; argv[0] should be an absolute path visible inside
      (e.g. sys.executable, which is always made visible read-only).
    - workdir: the only writable place; mounted read-write at the same path.
    - limits: Limits (CPU, wall, memory, processes, file size, output tail).
    - ro_paths: extra paths made visible read-only (the Python installation and
      /usr are always visible).
    - env: extra environment variables (the environment is otherwise cleared).
    - writable: paths relative to workdir handed to the sandbox user (when the
      grader is root); everything else in workdir stays read-only to it.
    - watchdog: optional callable polled about every 0.1 s after the first
      second; returning a reason kills the run (status "timeout").
    - host: the machine's Host (default HOST; tests describe another machine).

    Returns RunResult(returncode, status, output_tail, duration_s, missing_layers).
    """
    workdir = Path(workdir).resolve()
    host = host or HOST
    chosen = check_mode(host)  # raises SandboxRefused rather than run student code as the grader
    backend_name, userns, _ = backend(host)
    missing = missing_layers(host)
    full_env = _default_env(workdir)
    full_env.update(env or {})
    with contextlib.ExitStack() as stack:
        uid = stack.enter_context(uid_lease()) if can_drop_privileges(host) else None
        if uid is not None:
            _hand_over(workdir, writable, uid, namespaced=backend_name is not None)
        elif chosen == "unsafe":
            log.warning("SANDBOX UNSAFE: student code runs as the grader's own uid %s",
                        os.geteuid() if hasattr(os, "geteuid") else "?")
        return _run(argv, workdir, limits, full_env, backend_name, userns, uid, missing, ro_paths,
                    watchdog, host.root)


def _hand_over(workdir: Path, writable, uid: int, namespaced: bool) -> None:
    """Give uid its writable paths; workdir: root-owned, group uid (only that uid may enter)."""
    for rel in writable:
        target = workdir / rel
        for root, dirs, files in os.walk(target):
            for name in dirs + files:
                os.lchown(os.path.join(root, name), uid, uid)
        os.lchown(target, uid, uid)
    owner = os.lstat(workdir).st_uid
    os.chown(workdir, owner, uid)
    os.chmod(workdir, 0o700 if owner == uid else 0o750)  # other students' uids stay out
    if not namespaced:
        _open_parents(workdir)


def _run(argv, workdir: Path, limits: Limits, full_env, backend, userns, uid, missing, ro_paths,
         watchdog, root: bool) -> RunResult:
    ro = _python_ro_paths() + [str(p) for p in ro_paths]
    scratch = tempfile.mkdtemp(prefix="sandbox-")  # private to the grader: never mounted inside
    try:
        preexec = None
        if backend == "bwrap":
            cmd = _bwrap_command(argv, workdir, full_env, limits, ro, uid, root)
        elif backend == "unshare":
            root = Path(scratch, "root")
            root.mkdir()
            cmd = _unshare_command(argv, workdir, full_env, limits, ro, uid, root, userns)
        else:
            cmd = _plain_command(argv, workdir, full_env, limits, uid)
            if cmd == list(argv):
                preexec = _rlimit_preexec(limits)
        from grading import cgroups
        group = cgroups.Group.create(_group_name(uid),
                                     (limits.total_memory_mb or limits.memory_mb) << 20,
                                     limits.nproc + 8)
        if group is not None:
            preexec = _chain(group.enter, preexec)
        with tempfile.TemporaryFile(dir=scratch) as out:
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                    cwd=str(workdir), env=full_env if backend is None else {"PATH": _SYSTEM_PATH},
                    start_new_session=True, preexec_fn=preexec,
                )
                try:
                    rc, timed_out = _wait(proc, start, limits.wall_s, watchdog)
                finally:  # also when the grader is interrupted (Ctrl-C, SIGTERM) mid-run
                    _kill_group(proc)  # stragglers that outlived the main process (no pid namespace)
                duration = time.monotonic() - start
                _sample_disk()
                oom = group is not None and (group.oom_killed() or group.hit_limit())
                peak = group.peak_bytes() if group is not None else None
            finally:
                if group is not None:
                    group.close()  # kills whatever of the run is left, daemons included
                if uid is not None:  # nothing of the run may still run or write when the grader
                    _clear_uid(uid, namespaced=backend is not None)  # reads, or the uid goes back
            size = out.seek(0, os.SEEK_END)
            cap = limits.output_kb * 1024
            out.seek(max(0, size - cap))
            tail = out.read(cap).decode("utf-8", errors="replace")
            if size > cap:
                tail = f"[... {size - cap} earlier bytes of output cut ...]\n" + tail
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    status = _classify(rc, timed_out, tail, namespaced=backend is not None)
    if oom and status in ("timeout", "crash"):  # killed, or thrashing at the limit when stopped
        status = "memory"
    _note("peak_memory_mb", None if peak is None else peak / 2**20)
    return RunResult(rc, status, tail, duration, missing, uid,
                     None if peak is None else round(peak / 2**20, 1),
                     _signal(rc, namespaced=backend is not None))


def _chain(first, second):
    if second is None:
        return first

    def both():
        first()
        second()
    return both


def _wait(proc: subprocess.Popen, start: float, wall_s: float, watchdog) -> tuple[int, bool]:
    """Wait for proc under the wall limit and the watchdog; (returncode, timed_out)."""
    step = min(1.0, wall_s)  # most runs end within the first second: no polling cost
    while True:
        left = wall_s - (time.monotonic() - start)
        try:
            return proc.wait(timeout=max(0.0, min(step, left))), False
        except subprocess.TimeoutExpired:
            pass
        _sample_disk()
        if time.monotonic() - start >= wall_s or (watchdog is not None and watchdog()):
            _kill_group(proc)
            return proc.wait(), True
        step = 0.1


def uid_processes(uid: int) -> list[int]:
    """Pids of live (not zombie) processes owned by uid, from /proc (Linux)."""
    return _processes_of(uid, uid + 1).get(uid, [])


def _sandbox_uids_with_processes() -> set[int]:
    return set(_processes_of(_UID_BASE, _UID_BASE + _UID_SPAN))


def _processes_of(lo: int, hi: int) -> dict[int, list[int]]:
    """{uid: pids of its live (not zombie) processes} for uids in [lo, hi), one pass over /proc."""
    found: dict[int, list[int]] = {}
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            uid = os.stat(f"/proc/{name}").st_uid
            if not lo <= uid < hi:
                continue
            with open(f"/proc/{name}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != b"Z":
            found.setdefault(uid, []).append(int(name))
    return found


def _wait_uid_gone(uid: int, timeout: float) -> None:
    """After a kill, the kernel tears the pid namespace down asynchronously: wait for it."""
    deadline = time.monotonic() + timeout
    while uid_processes(uid):
        if time.monotonic() > deadline:
            for pid in uid_processes(uid):
                try:
                    os.kill(pid, signal.SIGKILL)  # only pids owned by this run's throw-away uid
                except OSError:
                    pass
            log.warning("sandbox uid %d still had processes after %.0f s; killed them", uid, timeout)
            return
        time.sleep(0.02)


def _clear_uid(uid: int, namespaced: bool) -> None:
    """After a run: no process of its uid left, and (no namespaces) none of its files in /tmp."""
    if namespaced:
        _wait_uid_gone(uid, timeout=5.0)
    else:
        kill_uid(uid)  # daemons that left the process group
        remove_uid_files(uid)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
