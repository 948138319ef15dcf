"""The hidden suite: cases drawn from a secret seed, with the reference's outputs.

A case names a probe (a test function of grading/probes.py, or grading/torch_probes.py for
the PyTorch tasks), its named arrays and its parameters. The worker runs the probe on the
student's module in the sandbox; here the same probe runs on the instructor's module, once
per grading run, for the expected outputs. Every task draws from its own stream of the
seed, so a subset of tasks draws the same cases.

    suite = build_suite(secret_seed)                   # once per grading run
"""
from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field

import numpy as np

from grading import probes, worker
from grading.hidden_tests.points import MODULE_TASKS, TASK_POINTS, TOL, TORCH_TASKS


@dataclass
class Case:
    """One hidden case: a probe, its named arrays and parameters, the reference outputs."""

    id: str  # "c007": names its files in the worker's folder
    task: str  # "task2_3"
    label: str  # shown to students: function, dtype, strides/pads/shapes (never values)
    probe: str  # the probe function's name
    module: str  # the cs_layers module it tests ("layers")
    arrays: dict[str, np.ndarray]  # the probe's array arguments, by name
    params: dict  # its other arguments: JSON values
    tol: float = TOL["float64"]
    outputs: tuple[str, ...] | None = None  # the probe's outputs that are graded (None: all)
    probes: str = "probes"  # the file that holds the probe: probes.py or torch_probes.py
    expected: dict[str, np.ndarray] = field(default_factory=dict)
    checks: dict = field(default_factory=dict)  # output name -> check(received, expected, tol)

    def plan(self) -> dict:
        """What the worker needs (never an expected output)."""
        return {"id": self.id, "task": self.task, "probes": self.probes, "probe": self.probe,
                "module": self.module, "params": self.params, "arrays": list(self.arrays),
                "outputs": None if self.outputs is None else list(self.outputs)}

    def input_files(self) -> dict[str, np.ndarray]:
        """{file stem: array}: the arrays as the worker loads them (inputs/<case>_<name>.npy)."""
        return {f"{self.id}_{name}": value for name, value in self.arrays.items()}


@dataclass
class Suite:
    cases: list[Case]
    points: dict[str, float]
    torch: Suite | None = None  # the PyTorch tasks, graded in their own worker (torch_cases.py)

    def tasks(self) -> list[str]:
        return [t for t in self.points if any(c.task == t for c in self.cases)]


class Draw:
    """Draws the cases of one suite: random arrays from the current task's stream, and cases."""

    def __init__(self, registry: dict, prefix: str = "c", probe_file: str = "probes"):
        self.rng = np.random.default_rng(0)
        self.cases: list[Case] = []
        self.registry, self.prefix, self.probe_file = registry, prefix, probe_file

    def normal(self, shape, dtype: str, scale: float = 1.0) -> np.ndarray:
        return (scale * self.rng.standard_normal(shape)).astype(dtype)

    def labels(self, shape, classes: int) -> np.ndarray:
        return self.rng.integers(0, classes, size=shape).astype(np.int64)

    def case(self, task: str, label: str, probe: str, dtype: str = "float64", *, outputs=None,
             checks=None, cls=Case, **named) -> Case:
        """A new case of `probe`: ndarray arguments are its arrays, the others its parameters."""
        case = cls(f"{self.prefix}{len(self.cases):03d}", task, label, probe, self.registry[probe].module,
                    {k: v for k, v in named.items() if isinstance(v, np.ndarray)},
                    {k: v for k, v in named.items() if not isinstance(v, np.ndarray)},
                    tol=TOL[dtype], outputs=outputs, probes=self.probe_file, checks=dict(checks or {}))
        self.cases.append(case)
        return case

    def use_stream(self, seed: bytes, task: str) -> None:
        """One stream per task: a subset of tasks draws the same cases."""
        digest = hashlib.sha256(bytes(seed) + b"/" + task.encode()).digest()
        self.rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))


def reference_module(name: str):
    return importlib.import_module(f"cs_layers.{name}")


def reference_outputs(case: Case, registry: dict) -> dict[str, np.ndarray]:
    """The probe's outputs on the instructor's cs_layers, as float64 arrays."""
    raw = worker.run_case(case.plan(), case.arrays, reference_module, registry)
    return {k: np.asarray(v, dtype=np.float64) for k, v in raw.items()}


def build_suite(seed: bytes, tasks=None) -> Suite:
    """Draw the hidden cases from the secret seed and compute the reference outputs.

    Inputs:
    - seed: secret bytes (e.g. os.urandom(16)); same seed -> same suite
    - tasks: optional subset of MODULE_TASKS + TORCH_TASKS (default all)

    Returns a Suite whose cases hold inputs, parameters, expected outputs and
    tolerances (the PyTorch tasks in suite.torch). Naive-layer inputs stay small (at
    most 9x9 images) so that grading one submission costs well under a second of CPU.
    """
    from grading.hidden_tests.module_cases import BUILDERS

    wanted = set(tasks or MODULE_TASKS + TORCH_TASKS)
    torch_wanted = sorted(wanted & set(TORCH_TASKS))
    wanted -= set(TORCH_TASKS)
    unknown = wanted - set(BUILDERS)
    if unknown:
        raise ValueError(f"build_suite: unknown tasks {sorted(unknown)}; choose from {MODULE_TASKS}")
    draw = Draw(probes.PROBES)
    for task in MODULE_TASKS:
        if task in wanted:
            draw.use_stream(seed, task)
            BUILDERS[task](draw)
    for case in draw.cases:
        case.expected = reference_outputs(case, probes.PROBES)
    suite = Suite(draw.cases, dict(TASK_POINTS))
    if torch_wanted:
        from grading import torch_cases  # imports torch (grader side only)

        suite.torch = torch_cases.build_suite(seed, torch_wanted)
    return suite
