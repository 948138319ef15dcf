"""What the hidden tests grade, derived from the course table (cs_layers/course.py).

Points of the automatically graded tasks: the module tasks (hidden tests in the numpy
worker), the PyTorch tasks (grading/torch_cases.py, in a torch worker; task3_5 from the
saved challenge weights) and the trained model (task2_9, grading/hidden_tests/model.py);
the file each task lives in (for "missing"); the tolerances.
"""
from cs_layers import course

TASK_POINTS: dict[str, float] = {t.id: t.points for t in course.TASKS
                                 if course.HIDDEN in t.graded or course.CHECKPOINT in t.graded}
TORCH_TASKS = tuple(t.id for t in course.TASKS if t.file == "torch_nets")
MODEL_TASK = next(t.id for t in course.TASKS if course.CHECKPOINT in t.graded)
MODULE_TASKS = tuple(t for t in TASK_POINTS if t != MODEL_TASK and t not in TORCH_TASKS)
TASK_FILES = {t.id: t.file for t in course.TASKS if course.HIDDEN in t.graded}
TOL = {"float64": 1e-7, "float32": 1e-4}  # of cs_layers.gradient_check.relative_error
