"""grading.markers: parsing solution regions, stubs, and the inverse."""
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from grading import markers
from grading.markers import BEGIN, END, MarkerError

ROOT = Path(__file__).resolve().parent.parent

SOURCE = f'''def f(x):
    """Doc."""
    y = x + 1
    # task2_3: conv_backward_naive
    {BEGIN}
    z = y * 2
    return_value = z
    {END}
    return return_value


class Net:
    def loss(self, X):
        # task2_8: ThreeLayerConvNet.loss
        {BEGIN}
        scores = X @ X.T
        {END}
        return scores
'''


def test_strip_replaces_each_region_by_its_stub_and_keeps_given_code():
    text, regions = markers.strip_solutions(SOURCE, "f.py")
    assert [(r.task, r.name) for r in regions] == [("task2_3", "conv_backward_naive"),
                                                  ("task2_8", "ThreeLayerConvNet.loss")]
    lines = text.splitlines()
    assert lines[3] == "    # task2_3: conv_backward_naive"
    assert lines[4] == ('    raise NotImplementedError("task2_3: implement conv_backward_naive — see '
                        'assignments/convnets/ConvolutionalNetworks.ipynb, section task2_3")')
    assert lines[5] == "    return return_value"
    assert "z = y * 2" not in text and "scores = X @ X.T" not in text
    assert '        raise NotImplementedError("task2_8: implement ThreeLayerConvNet.loss' in text
    compile(text, "f.py", "exec")   # the stubbed file is valid Python
    ns = {}
    exec(compile(text, "f.py", "exec"), ns)  # noqa: S102  (test-only: run the stub)
    with pytest.raises(NotImplementedError, match="^task2_3: implement conv_backward_naive"):
        ns["f"](1)


def test_restore_is_the_inverse_of_strip():
    stubbed, regions = markers.strip_solutions(SOURCE)
    assert markers.restore_solutions(stubbed, regions) == SOURCE


def test_restore_rejects_a_stub_for_another_task():
    stubbed, regions = markers.strip_solutions(SOURCE)
    with pytest.raises(MarkerError, match="task2_8"):
        markers.restore_solutions(stubbed, regions[::-1], "f.py")


@pytest.mark.parametrize("text, line, words", [
    (f"x = 1\n# task2_1: f\n{BEGIN}\ny = 2\n", 3, "never closed"),
    (f"x = 1\n{END}\n", 2, "without a matching"),
    (f"# task2_1: f\n{BEGIN}\n# task2_2: g\n{BEGIN}\ny = 1\n{END}\n", 4, "nested"),
    (f"x = 1\n{BEGIN}\ny = 2\n{END}\n", 2, "must be '# <task_id>: <function_name>'"),
    (f"# task2_1 f\n{BEGIN}\ny = 2\n{END}\n", 2, "must be"),
    (f"# taskA: f\n{BEGIN}\ny = 2\n{END}\n", 2, "must be"),
    (f"    # task2_1: f\n{BEGIN}\ny = 2\n{END}\n", 2, "indented differently"),
    (f"# task2_1: f\n{BEGIN}\ny = 2\n    {END}\n", 4, "indented differently"),
    (f"# task2_1: f\n{BEGIN}\n# only a comment\n{END}\n", 2, "empty solution region"),
    (f"x = 1  {BEGIN}\n", 1, "alone on their line"),
])
def test_malformed_markers_fail_with_file_and_line(text, line, words):
    with pytest.raises(MarkerError) as e:
        markers.strip_solutions(text, "cs_layers/bad.py")
    assert str(e.value).startswith(f"cs_layers/bad.py:{line}:"), str(e.value)
    assert words in str(e.value)


_lines = st.lists(st.sampled_from(["x = 1", "    y = f(x)", "", "# note", "return out"]), max_size=4)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(_lines, _lines.filter(lambda b: any(s.strip() and not s.strip().startswith("#")
                                                                for s in b))), max_size=4), _lines)
def test_strip_then_restore_round_trips_generated_files(chunks, tail):
    lines = []
    for k, (given_code, body) in enumerate(chunks):
        lines += given_code + [f"    # task2_{k + 1}: func{k}", f"    {BEGIN}"]
        lines += ["    " + b for b in body] + [f"    {END}"]
    text = "\n".join(lines + tail) + "\n"
    stubbed, regions = markers.strip_solutions(text)
    assert len(regions) == len(chunks)
    assert BEGIN not in stubbed
    assert markers.restore_solutions(stubbed, regions) == text


@pytest.mark.parametrize("path", sorted((ROOT / "cs_layers").glob("*.py")), ids=lambda p: p.name)
def test_every_cs_layers_file_parses_and_round_trips(path):
    text = path.read_text(encoding="utf-8")
    stubbed, regions = markers.strip_solutions(text, f"cs_layers/{path.name}")
    assert markers.restore_solutions(stubbed, regions) == text
    compile(stubbed, path.name, "exec")
    for r in regions:
        assert markers.stub_message(r.task, r.name) in stubbed
