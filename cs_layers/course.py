"""The course table: every task, and the names the student's tools and the grader share.

One row per task. Everything else is derived from it: the points of the hidden tests and
the checkpoint (grading/hidden_tests/points.py), the file a task lives in, which notebook and
section a stub message points to, the rows of grades.csv, the task list of
`python -m cs_layers.check`. tests/test_course.py checks that the pytest markers in
pyproject.toml, docs/tasks.md and the `# taskX_Y: name` lines above the solution regions
match it exactly. A new task is one row here, plus its code, its tests, its marker and its
line in docs/tasks.md.

This module ships in the student release: it holds names and points, never a hidden case
or a solution.
"""
import re
from dataclasses import dataclass

ASSIGNMENT = "convnets"  # nbgrader assignment id; the notebooks live in NOTEBOOK_DIR
NOTEBOOK_DIR = f"assignments/{ASSIGNMENT}"
NOTEBOOKS = ("ConvolutionalNetworks", "PyTorch")  # NOTEBOOK_DIR/<name>.ipynb
MODEL_FILE = "convnet_model.npz"  # task2_9's checkpoint, saved in NOTEBOOK_DIR
CHALLENGE_FILE = "challenge_model.pt"  # task3_5's weights, saved in NOTEBOOK_DIR
# Size caps, the same for the student's submit and the grader (a file over its cap is refused).
MAX_PY_BYTES = 1 << 20  # one cs_layers/*.py module
MAX_NOTEBOOK_BYTES = 50 << 20  # one notebook (outputs with images)
MAX_MODEL_BYTES = 50 << 20  # the checkpoint and the challenge weights, uncompressed
MAX_CHALLENGE_PARAMS = 5_000_000  # parameters of the challenge model (task3_5)
PARAM_NAMES = ("W1", "b1", "W2", "b2", "W3", "b3")  # the ThreeLayerConvNet's parameters, in a checkpoint
STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")  # a submission's name

# How a task is graded.
HIDDEN = "hidden tests"  # the student's functions on fresh inputs, in the sandbox
CHECKPOINT = "checkpoint"  # the saved model's accuracy on held-out data
MANUAL = "manual"  # answers in the notebook, graded by hand in formgrader


@dataclass(frozen=True)
class Task:
    id: str  # "task2_3": the stub message, notebook heading, grade_id and pytest marker
    title: str  # the pytest marker's description
    file: str | None  # the cs_layers module the student completes (None: notebook only)
    functions: tuple[str, ...]  # the solution regions of `file`, as named on their `# taskX_Y:` line
    points: float  # graded automatically (hidden tests or checkpoint); manual points are in the notebook
    graded: tuple[str, ...]  # HIDDEN, CHECKPOINT and/or MANUAL
    notebook: str  # the notebook whose section `id` guides the task

    @property
    def section(self) -> str:
        return f"{NOTEBOOK_DIR}/{self.notebook}.ipynb, section {self.id}"


_CONV, _TORCH = NOTEBOOKS
TASKS = (
    Task("task2_0", "conv geometry: output size, parameter and multiply-add counts, receptive field", "geometry",
         ("conv_output_size", "conv_param_count", "conv_macs", "receptive_field"), 4.0, (HIDDEN,), _CONV),
    Task("task2_1", "building blocks: affine, relu, softmax_loss", "layers",
         ("affine_forward", "affine_backward", "relu_forward", "relu_backward", "softmax_loss"),
         4.0, (HIDDEN,), _CONV),
    Task("task2_2", "conv_forward_naive", "layers", ("conv_forward_naive",), 6.0, (HIDDEN,), _CONV),
    Task("task2_3", "conv_backward_naive", "layers", ("conv_backward_naive",), 6.0, (HIDDEN,), _CONV),
    Task("task2_4", "max_pool_forward_naive / max_pool_backward_naive", "layers",
         ("max_pool_forward_naive", "max_pool_backward_naive"), 4.0, (HIDDEN,), _CONV),
    Task("task2_5", "conv_forward_fast / conv_backward_fast", "fast_layers",
         ("im2col_windows", "conv_forward_fast", "conv_backward_fast"), 6.0, (HIDDEN,), _CONV),
    Task("task2_6", "max_pool_forward_fast / max_pool_backward_fast", "fast_layers",
         ("max_pool_forward_fast", "max_pool_backward_fast"), 4.0, (HIDDEN,), _CONV),
    Task("task2_7", "sandwich layers in layer_utils", "layer_utils",
         ("affine_relu_forward", "affine_relu_backward", "conv_relu_forward", "conv_relu_backward",
          "conv_relu_pool_forward", "conv_relu_pool_backward", "conv_bn_relu_forward",
          "conv_bn_relu_backward"), 4.0, (HIDDEN,), _CONV),
    Task("task2_8", "ThreeLayerConvNet loss and gradients", "cnn",
         ("ThreeLayerConvNet.__init__", "ThreeLayerConvNet.loss"), 8.0, (HIDDEN,), _CONV),
    Task("task2_9", "train the ConvNet and save its checkpoint", None, (), 6.0, (CHECKPOINT,), _CONV),
    Task("task2_10", "batchnorm and spatial batch normalisation", "layers",
         ("batchnorm_forward", "batchnorm_backward", "spatial_batchnorm_forward",
          "spatial_batchnorm_backward"), 6.0, (HIDDEN,), _CONV),
    Task("task2_11", "spatial group normalisation", "layers",
         ("spatial_groupnorm_forward", "spatial_groupnorm_backward"), 6.0, (HIDDEN,), _CONV),
    Task("task2_12", "inline questions (manually graded)", None, (), 0.0, (MANUAL,), _CONV),
    Task("task3_1", "PyTorch barebones two-layer fully connected net", "torch_nets",
         ("random_weight", "two_layer_fc"), 2.0, (HIDDEN,), _TORCH),
    Task("task3_2", "PyTorch barebones three-layer ConvNet", "torch_nets",
         ("three_layer_convnet", "three_layer_convnet_params"), 2.0, (HIDDEN,), _TORCH),
    Task("task3_3", "PyTorch nn.Module nets", "torch_nets",
         ("TwoLayerFC.__init__", "TwoLayerFC.forward", "ThreeLayerConvNet.__init__",
          "ThreeLayerConvNet.forward"), 2.0, (HIDDEN,), _TORCH),
    Task("task3_4", "PyTorch nn.Sequential nets", "torch_nets",
         ("sequential_fc", "sequential_convnet"), 2.0, (HIDDEN,), _TORCH),
    Task("task3_5", "PyTorch open challenge", "torch_nets", ("challenge_model",), 6.0,
         (HIDDEN, MANUAL), _TORCH),
)
BY_ID = {t.id: t for t in TASKS}
TASK_IDS = tuple(BY_ID)


def size_cap(relpath: str) -> int:
    """The most bytes (uncompressed) a submitted file may hold: by kind, .py, .ipynb, or a model."""
    if relpath.endswith(".py"):
        return MAX_PY_BYTES
    if relpath.endswith(".ipynb"):
        return MAX_NOTEBOOK_BYTES
    return MAX_MODEL_BYTES


def task_key(task_id: str) -> tuple[int, int]:
    """Sort key: task2_10 after task2_9."""
    major, minor = task_id[4:].split("_")
    return int(major), int(minor)


def notebook_for(task_id: str) -> str:
    """The notebook file (no folder) that guides `task_id`."""
    task = BY_ID.get(task_id)
    if task is None:  # a task not in the table yet: its part's notebook
        return f"{_TORCH if task_id.startswith('task3_') else _CONV}.ipynb"
    return f"{task.notebook}.ipynb"
