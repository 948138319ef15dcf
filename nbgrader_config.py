"""nbgrader configuration of the course (instructor side).

Course layout: source notebooks in assignments/convnets/ (assignment id
`convnets`). In an nbgrader course folder a submission lives in
submitted/<student>/convnets/ and holds the notebooks, convnet_model.npz and
the student's cs_layers/ package; the source folder holds the instructor's.

exclude_overwriting: autograde copies every non-notebook file of the source
folder over the submission before it runs anything, so without this list every
student would be graded on the instructor's cs_layers. Paths are relative to
the assignment folder, written exactly as os.path.join would spell them
("cs_layers/layers.py"; "./cs_layers/layers.py" would silently not match).
Given files (shapes.py, gradient_check.py, ...) are deliberately NOT listed:
they are overwritten with the instructor's copies. The list must equal the
cs_layers files that hold solution regions; tests/test_nbgrader_config.py checks it.
"""
c = get_config()  # noqa: F821  (provided by nbgrader when it loads this file)

c.CourseDirectory.course_id = "cs-convnets"
c.CourseDirectory.source_directory = "assignments"

c.Autograde.exclude_overwriting = {
    "convnets": [
        "cs_layers/geometry.py",
        "cs_layers/layers.py",
        "cs_layers/fast_layers.py",
        "cs_layers/layer_utils.py",
        "cs_layers/cnn.py",
        "cs_layers/torch_nets.py",
        "convnet_model.npz",   # the student's trained checkpoint, never the instructor's
        "challenge_model.pt",  # the student's challenge weights (task3_5)
    ],
}

# The stub that replaces a solution region of a notebook code cell. It does not raise: the
# given line after each region raises NotImplementedError naming the task and what to write
# (nbgrader's own stub, a bare `raise NotImplementedError()`, would name neither).
c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE"}
