"""Runs INSIDE the sandbox: call the student's cs_layers on the hidden inputs.

Invoked as ``python -I -S -B worker.py WORKDIR`` (no user site, no PYTHON*
variables, no .pth files, no bytecode written). WORKDIR holds:

    plan.json          cases to run (written by grading.hidden_tests)
    inputs/*.npy       arrays, loaded with allow_pickle=False
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

The step interpreter (``run_case``) is shared with the grader, which runs the
same steps on the instructor's reference to get the expected outputs.
"""
from __future__ import annotations

import copy
import functools
import importlib
import json
import os
import sys
import traceback

PACKAGE = "cs_layers"
REFERENCE_MODULES = ("geometry",)  # the given code of later tasks runs on the instructor's copies
MAX_MESSAGE = 300  # characters of an exception message kept for the feedback


# ---------------------------------------------------------------- step interpreter
def _follow(obj, path):
    """Index obj by a path: int -> obj[i], ".name" -> getattr, other str -> obj[key]."""
    for key in path:
        if isinstance(key, str) and key.startswith("."):
            obj = getattr(obj, key[1:])
        else:
            obj = obj[key]
    return obj


def _arg(spec, env, arrays):
    """Decode one argument spec of the plan (see hidden_tests.Case)."""
    import numpy as np

    if "a" in spec:  # an input array (a fresh copy: student code may write into it)
        return np.array(arrays[spec["a"]], copy=True)
    if "v" in spec:  # a JSON literal (deep-copied: bn_param dicts get mutated)
        return copy.deepcopy(spec["v"])
    if "d" in spec:  # a dict of specs
        return {k: _arg(v, env, arrays) for k, v in spec["d"].items()}
    if "t" in spec:  # a tuple of specs (e.g. a cache (x, w, b, conv_param))
        return tuple(_arg(v, env, arrays) for v in spec["t"])
    if "l" in spec:  # a list of specs (e.g. receptive_field's (kernel, stride) pairs)
        return [_arg(v, env, arrays) for v in spec["l"]]
    if "r" in spec:  # an earlier step's result, indexed
        name, *path = spec["r"]
        return _follow(env[name], path)
    if "dt" in spec:  # a numpy float type, e.g. ThreeLayerConvNet(dtype=np.float32)
        if spec["dt"] not in ("float32", "float64"):
            raise ValueError(f"plan asks for dtype {spec['dt']!r}; only float32/float64 are allowed")
        return getattr(np, spec["dt"])
    raise ValueError(f"unknown argument spec {sorted(spec)}")


def run_case(case: dict, arrays: dict, import_module, probes=None) -> dict:
    """Run one case's steps; returns {output name: raw value}.

    case: {"steps": [...], "outputs": [...]} from the plan. import_module(name)
    returns the module `cs_layers.<name>` (the student's in the worker, the
    reference in the grader). Steps:
      {"call": "mod.fn", "args": [spec...], "kwargs": {k: spec}, "as": name}
        (with "raises": "ValueError": the result is 1 when the call raises it, 0
        when it returns; any other exception propagates)
      {"method": [name, "meth"], "args": [...], "kwargs": {...}, "as": name}
      {"set": [name, ".attr", key...], "value": spec}
      {"probe": "p", "module": "mod", "args": [...], "as": name}: probes["p"](module, *args)
      (probes: the PROBES of torch_probes.py, the PyTorch tasks' shared checks)
    Outputs: {"name": n, "r": [name, path...]} (a result) or
    {"name": n, "arg": [step name, arg index, key...]} (an argument after the call,
    e.g. bn_param's running_mean); "shape": true returns the value's shape.
    """
    env = {}
    for step in case["steps"]:
        args = [_arg(s, env, arrays) for s in step.get("args", [])]
        kwargs = {k: _arg(s, env, arrays) for k, s in step.get("kwargs", {}).items()}
        if "call" in step:
            mod, fn = step["call"].split(".")
            func = getattr(import_module(mod), fn)
        elif "method" in step:
            name, meth = step["method"]
            func = getattr(env[name], meth)
        elif "probe" in step:
            func = functools.partial(probes[step["probe"]], import_module(step["module"]))
        elif "set" in step:
            name, *path = step["set"]
            target = _follow(env[name], path[:-1])
            key = path[-1]
            value = _arg(step["value"], env, arrays)
            if isinstance(key, str) and key.startswith("."):
                setattr(target, key[1:], value)
            else:
                target[key] = value
            continue
        else:
            raise ValueError(f"unknown step {sorted(step)}")
        if step.get("raises") is not None:
            if step["raises"] != "ValueError":
                raise ValueError(f"plan expects {step['raises']!r}; only ValueError is supported")
            try:
                func(*args, **kwargs)
                env[step["as"]] = 0
            except ValueError:
                env[step["as"]] = 1
        else:
            env[step["as"]] = func(*args, **kwargs)
        env[step["as"] + "@args"] = args
    out = {}
    for spec in case["outputs"]:
        if "r" in spec:
            name, *path = spec["r"]
            value = _follow(env[name], path)
        else:
            name, *path = spec["arg"]
            value = _follow(env[name + "@args"], path)
        if spec.get("shape"):
            value = tuple(int(n) for n in value.shape)
        out[spec["name"]] = value
    return out


def case_modules(case: dict) -> set[str]:
    """The cs_layers submodules a case calls directly."""
    return ({s["call"].split(".")[0] for s in case["steps"] if "call" in s}
            | {s["module"] for s in case["steps"] if "probe" in s})


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


def _load_probes(workdir: str, plan: dict):
    """PROBES of WORKDIR/torch_probes.py (it imports torch) when a case uses one, else None."""
    if not any("probe" in s for c in plan["cases"] for s in c["steps"]):
        return None
    import importlib.util

    spec = importlib.util.spec_from_file_location("torch_probes",
                                                  os.path.join(workdir, "torch_probes.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.PROBES


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
            for name in case.get("inputs", []):
                arrays[name] = np.load(os.path.join(inputs, name + ".npy"), allow_pickle=False)
            outputs = run_case(case, arrays, import_module, probes)
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
