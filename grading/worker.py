"""Runs INSIDE the sandbox: call the student's cs_layers on the hidden inputs.

Invoked as ``python -I -S -B worker.py WORKDIR`` (no user site, no PYTHON*
variables, no .pth files, no bytecode written). WORKDIR holds:

    plan.json          cases to run (written by grading.hidden_tests.runner): per case, the
                       probe to call, the module it tests, its parameters, its array names
    probes.py          the probes (the hidden tests as functions); torch_probes.py for PyTorch
    inputs/*.npy       <case>_<name>.npy: the named arrays, loaded with allow_pickle=False
    pkg/cs_layers/     the student's whitelisted .py files, nothing else
    outputs/           written here: <case>__<name>.npy and status/<item>.json
    reference/         the instructor's copies of the modules in REFERENCE_MODULES

The given code of every task runs on the instructor's geometry (cs_layers.geometry
is the reference/ copy, installed before any student code runs), so a mistake in
task2_0 costs task2_0 alone; task2_0's own cases call the student's geometry.py,
loaded under another name.

For every case (and every student-module import) the worker writes
``status/<item>.start`` before and ``status/<item>.json`` after, and each
output as soon as its case is done, so a crash or timeout loses only the item
in flight and the grader can restart from the next case. Nothing written here
is trusted: the grader validates every array and ignores what it can't parse.

``run_case`` is shared with the grader, which runs the same probe on the
instructor's reference to get the expected outputs.
"""
from __future__ import annotations

import copy
import importlib
import json
import os
import sys
import traceback

PACKAGE = "cs_layers"
REFERENCE_MODULES = ("geometry",)  # the given code of later tasks runs on the instructor's copies
PROBE_FILES = ("probes", "torch_probes")  # copied next to this file: the hidden tests themselves
MAX_MESSAGE = 300  # characters of an exception message kept for the feedback


# ---------------------------------------------------------------- running one case
def run_case(case: dict, arrays: dict, import_module, probes: dict) -> dict:
    """Run one case's probe; returns {output name: raw value}.

    case: {"probe": name, "module": "layers", "params": {...}, "outputs": [...] or None}
    from the plan. arrays: {name: ndarray}, the case's named arrays. import_module(name)
    returns the module `cs_layers.<name>` (the student's in the worker, the reference in
    the grader). probes: {name: function}, from probes.py or torch_probes.py. The probe
    gets fresh copies of the arrays and of the parameters (student code may write into
    them) as keyword arguments; `outputs` picks some of what it returns, in that order.
    """
    import numpy as np

    module = import_module(case["module"])
    named = {name: np.array(value, copy=True) for name, value in arrays.items()}
    named.update(copy.deepcopy(case["params"]))
    result = probes[case["probe"]](module, **named)
    wanted = case.get("outputs") or list(result)
    return {name: result[name] for name in wanted}


# ---------------------------------------------------------------- inside the sandbox
def _describe(exc: BaseException, pkg_dir: str) -> str:
    """Type, the student's file:line where it happened, and a short message."""
    where = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith(pkg_dir):
            where = f" at {os.path.relpath(frame.filename, os.path.dirname(pkg_dir))}:{frame.lineno}"
    if isinstance(exc, SyntaxError) and exc.filename and exc.filename.startswith(pkg_dir):
        where = f" at {os.path.relpath(exc.filename, os.path.dirname(pkg_dir))}:{exc.lineno}"
    msg = str(exc).strip().replace("\n", " ")
    if len(msg) > MAX_MESSAGE:
        msg = msg[:MAX_MESSAGE] + "..."
    return f"{type(exc).__name__}{where}" + (f": {msg}" if msg else "")


def _kind(exc: BaseException) -> str:
    if isinstance(exc, NotImplementedError):
        return "missing"
    if isinstance(exc, MemoryError):
        return "memory"
    return "error"


def _write_json(path: str, data: dict) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)


def _to_array(value, np):
    """The student's value as a plain ndarray, or None if it is not numeric data."""
    if isinstance(value, tuple) and all(isinstance(n, int) for n in value):
        return np.asarray(value, dtype=np.int64)  # a shape output
    if type(value) in (float, int) or isinstance(value, np.generic):
        arr = np.asarray(value)
    elif isinstance(value, np.ndarray):
        arr = np.array(np.asarray(value), copy=True)  # drops ndarray subclasses
    else:
        return None
    return arr if arr.dtype.kind in "biuf" else None


def _load_file(name: str, path: str):
    """Execute the module file `path` as the module `name` (registered in sys.modules)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    try:
        spec.loader.exec_module(mod)
    except BaseException:
        del sys.modules[name]
        raise
    return mod


def install_references(workdir: str, names) -> dict:
    """The instructor's copies of `names`, registered as cs_layers.<name> before any student
    code runs, so that `from cs_layers.geometry import ...` in the given code finds them."""
    refs = {}
    for name in names:
        path = os.path.join(workdir, "reference", f"{name}.py")
        if os.path.isfile(path):
            refs[name] = _load_file(f"{PACKAGE}.{name}", path)
    return refs


def _load_probes(workdir: str, plan: dict) -> dict:
    """{file stem: its PROBES} for the probe files the plan's cases name (probes.py;
    torch_probes.py, which imports torch, only when a PyTorch case is in the plan)."""
    import importlib.util

    loaded = {}
    for stem in sorted({c["probes"] for c in plan["cases"]}):
        if stem not in PROBE_FILES:
            raise ValueError(f"plan names probe file {stem!r}; only {PROBE_FILES} exist")
        spec = importlib.util.spec_from_file_location(stem, os.path.join(workdir, f"{stem}.py"))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        loaded[stem] = mod.PROBES
    return loaded


def main(workdir: str) -> int:
    workdir = os.path.abspath(workdir)
    with open(os.path.join(workdir, "plan.json")) as f:
        plan = json.load(f)
    pkg_dir = os.path.join(workdir, "pkg", PACKAGE)
    # The student's package first, then the stdlib, then site-packages added by
    # hand: -S means .pth files (e.g. an editable install of the instructor's
    # cs_layers) are never processed.
    sys.path[:0] = [os.path.join(workdir, "pkg")]
    sys.path.extend(plan["site_packages"])
    import numpy as np  # before any student code runs
    probes = _load_probes(workdir, plan)  # torch too, when the plan has PyTorch cases
    refs = install_references(workdir, REFERENCE_MODULES)  # instructor code: before any student code

    out_dir = os.path.join(workdir, "outputs")
    status_dir = os.path.join(out_dir, "status")
    os.makedirs(status_dir, exist_ok=True)
    inputs = os.path.join(workdir, "inputs")

    imported = {}

    def import_module(name):
        if name in imported:
            return imported[name]
        item = os.path.join(status_dir, f"import-{name}")
        open(item + ".start", "w").close()
        try:
            if name in refs:  # a task's own cases: the student's file, under another name
                own = os.path.join(pkg_dir, f"{name}.py")
                if not os.path.isfile(own):
                    raise ImportError(f"cs_layers/{name}.py is not in the submission")
                importlib.import_module(PACKAGE)
                mod = _load_file(f"{PACKAGE}._submitted_{name}", own)
            else:
                mod = importlib.import_module(f"{PACKAGE}.{name}")
            package = sys.modules.get(PACKAGE)
            for ref_name, ref in refs.items():  # `cs_layers.geometry` as an attribute, too
                if package is not None:
                    setattr(package, ref_name, ref)
            origin = os.path.realpath(getattr(mod, "__file__", "") or "")
            if not origin.startswith(pkg_dir + os.sep):
                raise ImportError(f"{PACKAGE}.{name} resolved outside the submission; "
                                  f"submit cs_layers/{name}.py")
        except BaseException as exc:  # noqa: BLE001 - student code may raise anything
            _write_json(item + ".json", {"kind": _kind(exc), "message":
                        f"importing cs_layers/{name}.py failed: {_describe(exc, pkg_dir)}"})
            raise
        _write_json(item + ".json", {"kind": "ok"})
        imported[name] = mod
        return mod

    for case in plan["cases"]:
        cid = case["id"]
        item = os.path.join(status_dir, cid)
        open(item + ".start", "w").close()
        arrays = {}
        try:
            for name in case["arrays"]:
                arrays[name] = np.load(os.path.join(inputs, f"{cid}_{name}.npy"), allow_pickle=False)
            outputs = run_case(case, arrays, import_module, probes[case["probes"]])
            rejected = []
            for name, value in outputs.items():
                arr = _to_array(value, np)
                if arr is None:
                    rejected.append(f"{name} is a {type(value).__name__}, not a numeric array")
                    continue
                np.save(os.path.join(out_dir, f"{cid}__{name}.npy"), arr, allow_pickle=False)
            status = {"kind": "rejected", "message": "; ".join(rejected)} if rejected else {"kind": "ok"}
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt included
            status = {"kind": _kind(exc), "message": _describe(exc, pkg_dir)}
        _write_json(item + ".json", status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
