"""Hidden tests: fresh inputs from a secret seed, reference outputs, points, verdicts.

Grader side only. These modules import the instructor's ``cs_layers`` (the reference
solution) to compute expected outputs; student code never runs in this process. The
student's functions run in ``grading.worker`` inside ``grading.sandbox``, called by the
probes of ``grading/probes.py`` (one plain function per kind of case); only the arrays
they return come back, and they are validated (regular .npy file, size, no pickle, shape,
float dtype, finite) before being compared here.

One module per job:
    points.py        what is graded and for how many points (from cs_layers/course.py)
    suite.py         Case, Suite, build_suite: the cases and the reference's outputs
    module_cases.py  the cases of each module task (task2_0 to task2_11)
    workdir.py       the worker's folder: the submission, the inputs, the worker
    runner.py        grade_module: one sandboxed worker, restarted after a crash or timeout
    verdicts.py      the worker's outputs checked as data; points and feedback per task
    model.py         task2_9: the trained model's checkpoint, by held-out accuracy
(The PyTorch tasks: grading/torch_cases.py and grading/torch_probes.py.)

    suite = build_suite(secret_seed)                            # once per grading run
    results = grade_module(student_dir, suite, workdir=tmp)     # per student
    results.append(grade_model(student_dir / "assignments/convnets/convnet_model.npz"))
"""
from grading.hidden_tests.model import grade_model
from grading.hidden_tests.points import MODEL_TASK, MODULE_TASKS, TASK_FILES, TASK_POINTS, TOL, TORCH_TASKS
from grading.hidden_tests.runner import grade_module
from grading.hidden_tests.suite import Case, Suite, build_suite
from grading.hidden_tests.verdicts import compare, exact

__all__ = ["MODEL_TASK", "MODULE_TASKS", "TASK_FILES", "TASK_POINTS", "TOL", "TORCH_TASKS", "Case", "Suite",
           "build_suite", "compare", "exact", "grade_model", "grade_module"]
