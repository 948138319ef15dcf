"""The hostile corpus: broken and malicious submissions, each with its exact intended statuses.

Every submission is generated into a temporary folder from the instructor's `cs_layers` by a
small patch (grading.examples.append_patch / wrap), so no copy of the solutions is committed
and the corpus follows the reference as it changes.

Patched functions are chosen so that the damage stays inside one task: naive *backward*
layers and group norm are not used by any other task. Where a module cannot even be imported
(syntax error, crash at import), every task of a module that imports it is expected to be an
"error"; the import graph is read from the reference (examples.importers), not hard-coded.

An attack that tries to read or write past its working folder returns the CORRECT answer only
if the attempt worked, and zeros otherwise; its intended status is "failed", so a broken
isolation shows up as a false pass.
"""
from __future__ import annotations

import json
import shutil
import stat
import textwrap
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cs_layers import course
from grading import hidden_tests
from grading.examples import (
    CHALLENGE_FILE,
    MODEL_FILE,
    REFERENCE,
    append_patch,
    copy_reference,
    importers,
    task_modules,
    wrap,
)

REPO = REFERENCE.parent
NOTEBOOK_DIR = course.NOTEBOOK_DIR
MODEL_TASK = hidden_tests.MODEL_TASK


@dataclass
class Context:
    """Paths the attacks aim at, and shared inputs (a trained model, the source notebooks)."""

    submissions: Path  # the folder graded (other students live here)
    out: Path  # the grader's output folder (results, seed, gradebook)
    model: Path | None  # a trained checkpoint (for the correct and partly wrong submissions)
    challenge: Path | None = None  # trained challenge weights (task3_5), with the checkpoint
    repo: Path = REPO


@dataclass
class Case:
    name: str
    build: Callable[[Path, Context], Path]  # (folder to create the submission in, ctx) -> path
    expect: dict[str, str]  # task -> status; "*" sets every task; unlisted tasks: "passed"
    why: str
    model: bool = False  # the submission carries a trained model (task2_9 passes)
    notebook: str | None = None  # intended status of notebook tasks (checked when graded)
    needs: tuple[str, ...] = ()  # sandbox layers that must be active for the intended status


# ---------------------------------------------------------------- builders

def _reference(dest: Path, ctx: Context, *, model: bool = False) -> Path:
    copy_reference(dest)
    if model:
        (dest / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.model, dest / MODEL_FILE)
        if ctx.challenge is not None:
            shutil.copyfile(ctx.challenge, dest / CHALLENGE_FILE)
    return dest


def patched(module: str, code: str, *, model: bool = False):
    def build(dest: Path, ctx: Context) -> Path:
        _reference(dest, ctx, model=model)
        append_patch(dest, module, code if isinstance(code, str) else code(ctx))
        return dest
    return build


def _zipped(build_folder, extra: Callable[[zipfile.ZipFile], None] | None = None):
    def build(dest: Path, ctx: Context) -> Path:
        folder = build_folder(dest.parent / f".{dest.name}.src", ctx)
        target = dest.parent / f"{dest.name}.zip"
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
            for p in sorted(folder.rglob("*")):
                if p.is_file():
                    zf.write(p, p.relative_to(folder).as_posix())
            if extra:
                extra(zf)
        shutil.rmtree(folder)
        return target
    return build


def _corrupt_zip(dest: Path, ctx: Context) -> Path:
    target = _zipped(_reference)(dest, ctx)
    raw = target.read_bytes()
    target.write_bytes(raw[: len(raw) // 2])  # truncated upload: no central directory
    return target


def _zip_slip(zf: zipfile.ZipFile) -> None:
    zf.writestr("../../evil_zip_slip.py", "print('escaped')\n")


def _zip_symlink(zf: zipfile.ZipFile) -> None:
    info = zipfile.ZipInfo("cs_layers/link_to_hidden_tests.py")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    zf.writestr(info, str(REPO / "grading" / "hidden_tests" / "module_cases.py"))


def _zip_bomb(zf: zipfile.ZipFile) -> None:
    zf.writestr(MODEL_FILE, b"\0" * (64 << 20))  # 64 MiB of zeros in ~64 KiB


def _folder_symlink(dest: Path, ctx: Context) -> Path:
    _reference(dest, ctx)
    (dest / "cs_layers" / "layers.py").unlink()
    (dest / "cs_layers" / "layers.py").symlink_to(ctx.repo / "cs_layers" / "layers.py")
    return dest


def _missing_file(dest: Path, ctx: Context) -> Path:
    _reference(dest, ctx)
    (dest / "cs_layers" / "cnn.py").unlink()
    return dest


def _shadow_modules(dest: Path, ctx: Context) -> Path:
    _reference(dest, ctx)
    bomb = "import os\nos._exit(7)  # would kill the worker if this file were ever imported\n"
    for rel in ("numpy.py", "sitecustomize.py", "usercustomize.py", "cs_layers/numpy.py",
                "cs_layers/sitecustomize.py", "cs_layers/threadpoolctl.py", "grading/worker.py"):
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        (dest / rel).write_text(bomb)
    (dest / "usercustomize.pth").write_text("import os; os._exit(7)\n")
    return dest


def _notebook(dest: Path, ctx: Context, edit: Callable[[dict], str | None]) -> Path:
    _reference(dest, ctx)
    src = ctx.repo / NOTEBOOK_DIR / "ConvolutionalNetworks.ipynb"
    nb = json.loads(src.read_text())
    out = dest / NOTEBOOK_DIR / "ConvolutionalNetworks.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    text = edit(nb)
    out.write_text(text if text is not None else json.dumps(nb))
    return dest


def _grade_cells(nb: dict) -> list[dict]:
    return [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")]


def _delete_grade_cells(nb: dict) -> None:
    cells = _grade_cells(nb)
    nb["cells"] = [c for c in nb["cells"] if c is not cells[0]]


def _edit_grade_cell(nb: dict) -> None:
    cell = _grade_cells(nb)[0]
    cell["source"] = "assert True  # the hidden check was replaced\n"


def _corrupt_notebook(dest: Path, ctx: Context) -> Path:
    return _notebook(dest, ctx, lambda nb: '{"cells": [ {"cell_type": "code", "sour')


TORCH_TASKS = ("task3_1", "task3_2", "task3_3", "task3_4", "task3_5")

# One code cell inserted at the top of PyTorch.ipynb: every trick a kernel-side grader falls for.
_TORCH_NOTEBOOK_ATTACK = """
import ast, builtins, torch
class _Swallow(ast.NodeTransformer):  # wraps every later cell in try/except
    def visit_Module(self, node):
        handler = ast.ExceptHandler(type=ast.Name("BaseException", ast.Load()), name=None,
                                    body=[ast.Pass()])
        return ast.fix_missing_locations(ast.Module(
            body=[ast.Try(body=node.body or [ast.Pass()], handlers=[handler], orelse=[],
                          finalbody=[])], type_ignores=[]))
get_ipython().ast_transformers.append(_Swallow())
builtins.AssertionError = type("AssertionError", (Exception,), {})  # patched builtins
torch.allclose = lambda *a, **k: True  # patched torch functions
torch.testing.assert_close = lambda *a, **k: None
torch.Tensor.__eq__ = lambda self, other: torch.ones((), dtype=torch.bool)
"""


def _torch_stub(dest: Path, ctx: Context) -> Path:
    """The reference with torch_nets.py stubbed for every task3 (no challenge weights)."""
    from grading.markers import strip_solutions

    _reference(dest, ctx, model=True)
    path = dest / "cs_layers" / "torch_nets.py"
    path.write_text(strip_solutions(path.read_text(), path.name, set(TORCH_TASKS))[0])
    (dest / CHALLENGE_FILE).unlink(missing_ok=True)
    return dest


def _torch_notebook(edit: Callable[[dict], None]):
    def build(dest: Path, ctx: Context) -> Path:
        _torch_stub(dest, ctx)
        nb = json.loads((ctx.repo / NOTEBOOK_DIR / "PyTorch.ipynb").read_text())
        edit(nb)
        out = dest / NOTEBOOK_DIR / "PyTorch.ipynb"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(nb))
        return dest
    return build


def _insert_attack_cell(nb: dict) -> None:
    nb["cells"].insert(1, {"cell_type": "code", "execution_count": None, "id": "attack",
                           "metadata": {}, "outputs": [], "source": _TORCH_NOTEBOOK_ATTACK})


# ---------------------------------------------------------------- attack code

def _zeros_unless(flag: str) -> str:
    """Wrapper body: the correct result only when `flag` is true, zeros otherwise."""
    return f"""
        out = _orig(*args, **kwargs)
        if {flag}:
            return out
        import numpy as _np
        if isinstance(out, tuple):
            return tuple(_np.zeros_like(o) if isinstance(o, _np.ndarray) else o for o in out)
        return _np.zeros_like(out)
    """


def _read_attack(ctx: Context) -> str:
    targets = [ctx.repo / "cs_layers" / "layers.py", ctx.repo / "grading" / "hidden_tests" / "module_cases.py",
               ctx.repo / "grading" / "worker.py", ctx.out / ".secret_seed",
               ctx.out / "gradebook.db", ctx.out / "results",
               ctx.submissions / "correct" / "cs_layers" / "layers.py", ctx.submissions,
               Path("/root/.bashrc"), Path("/etc/shadow")]  # (/root itself may hold the Python)
    return textwrap.dedent(f"""
        import os as _os

        def _could_read():
            got = []
            for p in {[str(t) for t in targets]!r} + ["../../../grading/hidden_tests/module_cases.py"]:
                try:
                    if _os.path.isdir(p):
                        got += _os.listdir(p)
                    else:
                        with open(p, "rb") as f:
                            got.append(f.read(64))
                except Exception:
                    pass
            return bool(got)

    """) + wrap("conv_backward_naive", _zeros_unless("_could_read()"))


def _write_attack(ctx: Context) -> str:
    targets = [ctx.repo / "PWNED_by_student", ctx.out / "PWNED_by_student",
               ctx.submissions / "PWNED_by_student", ctx.out / "results" / "correct.json",
               Path("/root/PWNED_by_student"), Path("/etc/PWNED_by_student")]
    return textwrap.dedent(f"""
        def _could_write():
            ok = False
            for p in {[str(t) for t in targets]!r} + ["../PWNED_by_student"]:
                try:
                    with open(p, "a") as f:
                        f.write("student was here")
                    ok = True
                except Exception:
                    pass
            return ok

    """) + wrap("max_pool_backward_naive", _zeros_unless("_could_write()"))


def write_targets(ctx: Context) -> list[Path]:
    """Host paths the write attack aims at; none may exist after grading."""
    return [ctx.repo / "PWNED_by_student", ctx.out / "PWNED_by_student",
            ctx.submissions / "PWNED_by_student", Path("/root/PWNED_by_student"),
            Path("/etc/PWNED_by_student")]


_MONKEYPATCH_NUMPY = textwrap.dedent("""
    import numpy as _np
    _np.allclose = lambda *a, **k: True
    _np.array_equal = lambda *a, **k: True
    _np.isclose = lambda a, b, *r, **k: _np.ones(_np.broadcast(a, b).shape, dtype=bool)
    _np.testing.assert_allclose = lambda *a, **k: None
    _np.testing.assert_array_equal = lambda *a, **k: None
    _np.isfinite = lambda x, *a, **k: _np.ones(_np.shape(x), dtype=bool)
    _np.isnan = lambda x, *a, **k: _np.zeros(_np.shape(x), dtype=bool)
""")

_MONKEYPATCH_HELPERS = textwrap.dedent("""
    import sys as _sys
    import cs_layers.gradient_check as _gc
    _gc.rel_error = lambda *a, **k: 0.0
    _gc.check_close = lambda *a, **k: 0.0
    for _mod in list(_sys.modules.values()):  # the worker and anything it imported
        _name = getattr(_mod, "__name__", "")
        if _name == "__main__" or "grad" in _name or "worker" in _name:
            for _attr in list(vars(_mod)):
                if any(w in _attr.lower() for w in ("check", "valid", "compare", "status")):
                    try:
                        setattr(_mod, _attr, lambda *a, **k: True)
                    except Exception:
                        pass
""")


_EQ_ALWAYS_TRUE = textwrap.dedent("""
    class _Liar:
        shape = property(lambda self: self._shape)
        def __init__(self, shape):
            self._shape = shape
        def __eq__(self, other):
            return True
        def __ne__(self, other):
            return False
        def __array__(self, *a, **k):
            raise TypeError("no")
        def __float__(self):
            return 0.0

""")

_FORK_BOMB = textwrap.dedent("""
    import os as _os, resource as _resource, time as _time

    def _bomb():
        soft, _hard = _resource.getrlimit(_resource.RLIMIT_NPROC)
        contained = (_os.getuid() != 0 and soft != _resource.RLIM_INFINITY and soft <= 4096)
        deadline = _time.time() + 90  # even an escaped bomb stops by itself
        while _time.time() < deadline:
            if not contained:  # never fork without a process limit: just hang
                _time.sleep(0.5)
                continue
            try:
                _os.fork()
            except OSError:
                _time.sleep(0.01)
        _os._exit(0)

""")


# ---------------------------------------------------------------- attacks on the grader's boundary

_CURRENT_CASE = textwrap.dedent("""
    import atexit as _atexit, os as _os

    def _current_case():
        names = _os.listdir("outputs/status")  # the worker's cwd is its work folder
        started = {n[:-6] for n in names if n.endswith(".start")}
        done = {n[:-5] for n in names if n.endswith(".json")}
        left = sorted(i for i in started - done if not i.startswith("import-"))
        return left[-1] if left else None

""")

_PLANT_AT_EXIT = _CURRENT_CASE + textwrap.dedent("""
    def _plant(kind):
        cid = _current_case()

        def swap():  # after the worker wrote this case's status and outputs
            for name in _os.listdir("outputs"):
                if name.startswith(cid + "__"):
                    _os.unlink("outputs/" + name)
                    _os.mkfifo("outputs/" + name)
            status = "outputs/status/" + cid + ".json"
            _os.unlink(status)
            if kind == "fifo":
                _os.mkfifo(status)  # a grader that open()s it blocks forever
            else:
                with open(status, "w") as f:  # 8000 bytes, 4000 levels: RecursionError in json
                    f.write("[" * 4000 + "]" * 4000)
        _atexit.register(swap)

""")


def _keep_alive() -> str:
    return _CURRENT_CASE + wrap("max_pool_backward_naive", """
        import time
        cid = _current_case()
        if _os.fork() == 0:  # keeps the case looking fresh: mtimes and new .start names
            end, i = time.time() + 120, 0
            while time.time() < end:
                try:
                    _os.utime("outputs/status/" + cid + ".start")
                    open("outputs/status/keepalive%d.start" % i, "w").close()
                except OSError:
                    pass
                i += 1
                time.sleep(0.2)
            _os._exit(0)
        while True:
            time.sleep(1)
    """)


_DISK_FILL_PROCS = wrap("conv_backward_naive", """
    import os
    kids = []
    for k in range(4):  # 4 processes x 6 files x 60 MiB = 1.4 GiB; each file under RLIMIT_FSIZE
        pid = os.fork()
        if pid == 0:
            code = 0
            try:
                for i in range(6):
                    with open("outputs/fill%d_%d.bin" % (k, i), "wb") as f:
                        for _ in range(60):
                            f.write(b"\\0" * (1 << 20))
            except OSError:
                code = 1
            os._exit(code)
        kids.append(pid)
    failed = [os.waitpid(p, 0)[1] for p in kids]
    for name in os.listdir("outputs"):  # leave room for the other tasks' outputs
        if name.startswith("fill"):
            os.unlink("outputs/" + name)
    if any(failed):
        raise OSError("the disk filled up")
    return _orig(*args, **kwargs)  # reached only when 1.4 GiB fit: no disk bound
""")

_MEMORY_PROCS = wrap("spatial_groupnorm_backward", """
    import os, time
    kids = []
    for k in range(4):  # 4 x 700 MiB: each under RLIMIT_AS (2 GiB), 2.8 GiB together
        pid = os.fork()
        if pid == 0:
            import mmap  # MAP_POPULATE: every page touched at once
            block = mmap.mmap(-1, 700 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
                              | mmap.MAP_POPULATE)
            time.sleep(2)
            os._exit(0)
        kids.append(pid)
    if any(os.waitpid(p, 0)[1] for p in kids):
        raise MemoryError("a process of this run was killed for memory")
    return _orig(*args, **kwargs)  # reached only when 2.8 GiB fit: no total memory bound
""")


def _daemon(ctx: Context) -> str:
    target = ctx.out / "results" / "daemon.json"
    loop = f"while :; do echo '{{}}' > {target} 2>/dev/null; sleep 0.2; done"
    return wrap("conv_backward_naive", f"""
        import os
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # a daemon that tries to rewrite this student's result later
                os.execv("/bin/sh", ["/bin/sh", "-c", {loop!r}, {daemon_marker(ctx)!r}])
            os._exit(0)
        dx, dw, db = _orig(*args, **kwargs)
        return dx, dw * 2, db
    """)


def _expensive_checkpoint(dest: Path, ctx: Context) -> Path:
    from cs_layers.cnn import ThreeLayerConvNet, save_model

    _reference(dest, ctx)
    # 128 filters of 9x9 on 3x32x32 images: 32 M multiply-adds per image, in a 1.4 MiB file
    model = ThreeLayerConvNet(input_dim=(3, 32, 32), num_filters=128, filter_size=9,
                              hidden_dim=10, weight_scale=1e-2)
    (dest / MODEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    save_model(dest / MODEL_FILE, model, dataset="digits")
    return dest


def daemon_marker(ctx: Context) -> str:
    """A string only the daemon case's leftover process would carry in its command line."""
    return str(ctx.out)



def cases(ctx: Context | None = None) -> list[Case]:
    """All corpus cases: >= 20 broken/hostile ones, plus correct and partly wrong."""
    rej = {"*": "rejected"}
    return [
        Case("correct", lambda d, c: _reference(d, c, model=True), {}, "the reference", model=True),
        Case("partly_wrong", patched("layers.py", wrap("conv_backward_naive", """
                 dx, dw, db = _orig(*args, **kwargs)
                 return dx, dw, -db
             """) + "\n" + wrap("spatial_groupnorm_forward", """
                 out, cache = _orig(*args, **kwargs)
                 return out * 1.01, cache
             """), model=True),
             {"task2_3": "failed", "task2_11": "failed"}, "wrong db sign; group norm off by 1%",
             model=True),
        # --- intake
        Case("corrupt_zip", _corrupt_zip, rej, "truncated zip"),
        Case("zip_slip", _zipped(_reference, _zip_slip), rej, "zip member ../../evil_zip_slip.py"),
        Case("zip_symlink", _zipped(_reference, _zip_symlink), rej,
             "zip member is a link to the hidden tests"),
        Case("zip_bomb", _zipped(_reference, _zip_bomb), rej, "64 MiB of zeros compressed 1000x"),
        Case("folder_symlink", _folder_symlink, rej, "cs_layers/layers.py links to the reference"),
        Case("missing_file", _missing_file, {"task2_8": "missing"}, "cs_layers/cnn.py absent"),
        Case("unfinished", patched("layers.py", wrap("spatial_groupnorm_backward", """
                 raise NotImplementedError("task2_11: implement spatial_groupnorm_backward")
             """)), {"task2_11": "missing"}, "still the release stub"),
        # --- broken code
        Case("syntax_error", patched("cnn.py", "def broken(:\n    pass\n"),
             {"module:cnn.py": "error"}, "SyntaxError in cnn.py"),
        Case("import_crash", patched("layer_utils.py", "raise RuntimeError('crash at import')\n"),
             {"module:layer_utils.py": "error"}, "RuntimeError when layer_utils is imported"),
        # --- resource attacks
        Case("infinite_loop", patched("layers.py", wrap("max_pool_backward_naive", """
                 while True:
                     pass
             """)), {"task2_4": "timeout"}, "while True: pass"),
        Case("memory_bomb", patched("layers.py", wrap("spatial_groupnorm_backward", """
                 hog = []
                 while True:  # bytes(n) is calloc'd: it hits the address-space limit at once
                     hog.append(bytes(256 << 20))
             """)), {"task2_11": "memory"}, "allocates 256 MiB blocks until it dies"),
        Case("fork_bomb", patched("layers.py", _FORK_BOMB + wrap("max_pool_backward_naive", """
                 _bomb()
             """)), {"task2_4": "timeout"}, "forks until the process limit, for 90 s",
             needs=("unprivileged user", "rlimits")),
        Case("os_exit", patched("layers.py", wrap("conv_backward_naive", """
                 import os
                 os._exit(0)
             """)), {"task2_3": "error"}, "os._exit(0) during a test"),
        Case("sys_exit", patched("layers.py", wrap("spatial_groupnorm_backward", """
                 import sys
                 sys.exit(0)
             """)), {"task2_11": "error"}, "sys.exit(0) during a test"),
        Case("enormous_output", patched("layers.py", wrap("max_pool_backward_naive", """
                 import sys
                 chunk = "spam" * (1 << 18)
                 for _ in range(1 << 12):  # 4 GiB
                     sys.stdout.write(chunk)
                     sys.stderr.write(chunk)
                 return _orig(*args, **kwargs)
             """)), {"task2_4": "error"}, "prints 4 GiB (over the output/file-size limit)"),
        Case("disk_fill", patched("layers.py", wrap("conv_backward_naive", """
                 with open("fill.bin", "wb") as f:
                     for _ in range(1 << 10):
                         f.write(b"\\0" * (1 << 20))
                 return _orig(*args, **kwargs)
             """)), {"task2_3": "error"}, "writes a 1 GiB file (over the file-size limit)"),
        # --- lying results
        Case("eq_always_true", patched("layers.py", _EQ_ALWAYS_TRUE + wrap("spatial_groupnorm_forward", """
                 out, cache = _orig(*args, **kwargs)
                 return _Liar(out.shape), cache
             """)), {"task2_11": "rejected"}, "returns an object whose __eq__ is always True"),
        Case("wrong_shape", patched("layers.py", wrap("conv_backward_naive", """
                 dx, dw, db = _orig(*args, **kwargs)
                 return dx[..., :-1], dw, db
             """)), {"task2_3": "failed"}, "dx lacks its last column"),
        Case("wrong_dtype", patched("layers.py", wrap("spatial_groupnorm_forward", """
                 out, cache = _orig(*args, **kwargs)
                 return out.astype(complex) + 1j, cache
             """)), {"task2_11": "rejected"}, "complex output (real part right)"),
        Case("nan", patched("layers.py", wrap("max_pool_backward_naive", """
                 dx = _orig(*args, **kwargs).copy()
                 dx.flat[0] = float("nan")
                 return dx
             """)), {"task2_4": "failed"}, "a NaN in dx"),
        # --- reaching past the working folder
        Case("read_outside", patched("layers.py", _read_attack),
             {"task2_3": "failed"}, "right answer only if it can read the reference, hidden tests, "
             "seed, gradebook or another submission", needs=("unprivileged user",)),
        Case("write_outside", patched("layers.py", _write_attack),
             {"task2_4": "failed"}, "right answer only if it can write outside its folder",
             needs=("unprivileged user",)),
        # --- tampering with the checks
        Case("monkeypatch_numpy", patched("layers.py", _MONKEYPATCH_NUMPY + "\n" + wrap(
                 "spatial_groupnorm_backward", """
                 dx, dgamma, dbeta = _orig(*args, **kwargs)
                 return dx * float("nan"), dgamma * 2, dbeta
             """)), {"task2_11": "failed"}, "np.allclose -> True, np.isfinite -> True, NaN dx"),
        Case("monkeypatch_helpers", patched("layers.py", _MONKEYPATCH_HELPERS + "\n" + wrap(
                 "conv_backward_naive", """
                 dx, dw, db = _orig(*args, **kwargs)
                 return dx, dw * 2, db
             """)), {"task2_3": "failed"}, "rel_error -> 0 and the worker's checks -> True"),
        Case("shadow_modules", _shadow_modules, {}, "numpy.py, sitecustomize.py, "
             "usercustomize.py, cs_layers/numpy.py that os._exit(7) if imported (never are)"),
        # --- notebooks (module code correct)
        # --- the grader's boundary: special files, keep-alive, cost per student, leftovers
        Case("fifo_status", patched("layers.py", _PLANT_AT_EXIT + wrap("spatial_groupnorm_backward", """
                 _plant("fifo")
                 return _orig(*args, **kwargs)
             """)), {"task2_11": "error"}, "at exit, swaps its status and outputs for FIFOs"),
        Case("deep_json_status", patched("layers.py", _PLANT_AT_EXIT + wrap("max_pool_backward_naive", """
                 _plant("deep")
                 return _orig(*args, **kwargs)
             """)), {"task2_4": "error"}, "at exit, rewrites its status as JSON 4000 levels deep"),
        Case("keep_alive", lambda d, c: patched("layers.py", _keep_alive())(d, c),
             {"task2_4": "timeout"}, "hangs while a child keeps touching its .start file"),
        Case("expensive_checkpoint", _expensive_checkpoint, {"task2_9": "rejected"},
             "a checkpoint of 32 M multiply-adds per image (minutes of CPU on the test set)"),
        Case("disk_fill_procs", patched("layers.py", _DISK_FILL_PROCS), {"task2_3": "error"},
             "4 processes write 1.4 GiB in 60 MiB files (the tmpfs holds 512 MiB)",
             needs=("disk quota",)),
        Case("memory_procs", patched("layers.py", _MEMORY_PROCS), {"task2_11": "memory"},
             "4 processes touch 700 MiB each (2.8 GiB together)", needs=("memory cgroup",)),
        Case("daemon", patched("layers.py", _daemon), {"task2_3": "failed"},
             "a double-forked daemon that keeps trying to rewrite its result file",
             needs=("unprivileged user",)),
        Case("corrupt_notebook", _corrupt_notebook, {}, "truncated JSON", notebook="rejected"),
        Case("deleted_grade_cell", lambda d, c: _notebook(d, c, _delete_grade_cells), {},
             "first grade cell deleted", notebook="rejected"),
        Case("edited_grade_cell", lambda d, c: _notebook(d, c, _edit_grade_cell), {},
             "first grade cell replaced by `assert True`", notebook="rejected"),
        # --- PyTorch: stubbed torch_nets.py + a hostile PyTorch.ipynb scores what a stub scores
        Case("torch_stub", _torch_stub, {t: "missing" for t in TORCH_TASKS},
             "torch_nets.py as released (every task3 stub), no challenge weights", model=True),
        Case("torch_notebook_attacks", _torch_notebook(_insert_attack_cell),
             {t: "missing" for t in TORCH_TASKS}, "stubbed torch_nets.py; PyTorch.ipynb with an AST "
             "transformer swallowing every error, patched builtins and torch.allclose / Tensor.__eq__",
             model=True, notebook="passed"),
        Case("torch_edited_grade_cell", _torch_notebook(_edit_grade_cell),
             {t: "missing" for t in TORCH_TASKS}, "stubbed torch_nets.py; first PyTorch grade cell "
             "replaced by `assert True`", model=True, notebook="rejected"),
    ]


def expected_statuses(case: Case, tasks: list[str]) -> dict[str, str]:
    """The exact intended status of every module task and task2_9 for `case`."""
    if "*" in case.expect:
        return {t: case.expect["*"] for t in tasks}
    out = {t: "passed" for t in tasks}
    out[MODEL_TASK] = "passed" if case.model else "missing"
    if "task3_5" in out:  # the challenge weights travel with the checkpoint
        out["task3_5"] = "passed" if case.model else "missing"
    where = task_modules()
    for key, status in case.expect.items():
        if key.startswith("module:"):
            broken = importers(key.split(":", 1)[1])
            for t in tasks:
                if where.get(t) in broken:
                    out[t] = status
        else:
            out[key] = status
    return out


def build_corpus(root: Path, ctx: Context, selected: list[Case] | None = None) -> dict[str, Path]:
    """Generate the cases into `root` (= ctx.submissions); returns student id -> path."""
    root.mkdir(parents=True, exist_ok=True)
    return {c.name: c.build(root / c.name, ctx) for c in (selected or cases(ctx))}


def describe(case: Case) -> str:
    return textwrap.shorten(f"{case.name}: {case.why}", 100)
