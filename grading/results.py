"""One graded task's result, shared by the grader, the orchestration and the exports.

A ``TaskResult`` is plain data: it is written to JSON per student, exported to
grades.csv / the gradebook / Gradescope, and rendered in the feedback HTML.
Its ``message`` is shown to the student, so it never contains hidden inputs or
expected values (a worst-element index, a relative error against the
tolerance and the case's shapes/strides are fine).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

# passed   every hidden case matched the reference within tolerance
# failed   ran, but some output was wrong (values, shape, dtype, NaN/inf)
# error    raised an exception, crashed the worker, or failed to import
# timeout  ran past the CPU or wall-clock limit
# memory   ran past the memory limit
# missing  file absent or still the release stub (NotImplementedError)
# rejected returned something that is not a numeric array (object, None, ...)
# pending  awaits manual grading (inline questions), 0 of its points until graded in nbgrader
# graded   graded by hand in nbgrader's formgrader (brought in by `grading collect-manual`)
STATUSES = ("passed", "failed", "error", "timeout", "memory", "missing", "rejected", "pending",
            "graded")


@dataclass
class TaskResult:
    task: str  # e.g. "task2_3"
    score: float
    max_score: float
    status: str  # one of STATUSES
    message: str  # safe to show to the student
    tolerance: float | None = None  # the relative-error tolerance of the task's checks

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(
                f"TaskResult status {self.status!r} is not one of {STATUSES}; "
                "use one of those names"
            )
        if not 0.0 <= self.score <= self.max_score:
            raise ValueError(
                f"TaskResult score {self.score} is outside [0, {self.max_score}] "
                f"for {self.task}; clamp the score before building the result"
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TaskResult":
        """Build from a dict (e.g. read back from a results JSON); unknown keys are an error."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown TaskResult fields {sorted(unknown)}; expected a subset of {sorted(names)}"
            )
        return cls(
            task=str(d["task"]),
            score=float(d["score"]),
            max_score=float(d["max_score"]),
            status=str(d["status"]),
            message=str(d["message"]),
            tolerance=None if d.get("tolerance") is None else float(d["tolerance"]),
        )
