"""Spec validation mirrors Azure ML v1's own rules, so mistakes show before Azure sees them."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlops.spec import (
    DataPathParam,
    DatasetInput,
    Output,
    ParallelStep,
    Param,
    Pipeline,
    ScriptStep,
    SpecError,
)

SRC = Path(".")


def script(name: str, *args, **kw) -> ScriptStep:
    return ScriptStep(name=name, source_dir=SRC, script="main.py", arguments=list(args), **kw)


def parallel(**kw) -> ParallelStep:
    base = dict(
        name="score",
        source_dir=SRC,
        entry_script="score.py",
        inputs=[DatasetInput("scoring-data")],
        output=Output("scores"),
    )
    return ParallelStep(**{**base, **kw})


@pytest.mark.parametrize("name", ["1abc", "has-dash", "has space", "", "é"])
def test_output_names_follow_v1_rule(name):
    with pytest.raises(SpecError, match="Output name"):
        Output(name)


@pytest.mark.parametrize("default", [None, [1], {"a": 1}, (1,)])
def test_param_defaults_are_int_float_bool_or_str(default):
    with pytest.raises(SpecError, match="default must be int, float, bool or str"):
        Param("p", default)


def test_param_with_valid_defaults():
    assert [Param("p", v).default for v in (1, 1.5, True, "x")] == [1, 1.5, True, "x"]


@pytest.mark.parametrize("size", ["5", "1MB", "10kb", "3Gb", "0"])
def test_mini_batch_size_accepts_v1_forms(size):
    assert parallel(mini_batch_size=size).mini_batch_size == size


@pytest.mark.parametrize("size", ["1.5MB", "MB", "5 MB", "1TB", "-1", "1MBB"])
def test_mini_batch_size_rejects_other_forms(size):
    with pytest.raises(SpecError, match="mini_batch_size"):
        parallel(mini_batch_size=size)


@pytest.mark.parametrize("value", [-2, 1.5, "4", True])
def test_error_threshold_is_int_at_least_minus_one(value):
    with pytest.raises(SpecError, match="error_threshold"):
        parallel(error_threshold=value)


def test_error_threshold_minus_one_ignores_failures():
    assert parallel(error_threshold=-1).error_threshold == -1


@pytest.mark.parametrize("flag", ["--mini_batch_size", "--output", "--error_threshold=3"])
def test_reserved_parallel_arguments_are_rejected(flag):
    with pytest.raises(SpecError, match="reserved by ParallelRunStep"):
        parallel(arguments=[flag, "1"])


def test_parallel_arguments_must_start_with_a_flag():
    with pytest.raises(SpecError, match="keyword arguments"):
        parallel(arguments=["positional", "--x", "1"])


@pytest.mark.parametrize("pct", [-1, 101, "5"])
def test_allowed_failed_percent_is_0_to_100(pct):
    with pytest.raises(SpecError, match="allowed_failed_percent"):
        parallel(allowed_failed_percent=pct)


def test_parallel_step_needs_an_input_and_one_output():
    with pytest.raises(SpecError, match="at least one input"):
        parallel(inputs=[])
    with pytest.raises(SpecError, match="output must be an Output"):
        parallel(output=None)


def test_append_row_file_name_needs_append_row():
    with pytest.raises(SpecError, match="append_row_file_name"):
        parallel(output_action="summary_only", append_row_file_name="out.txt")
    with pytest.raises(SpecError, match="append_row_file_name"):
        parallel(append_row_file_name="a/b.txt")


def test_parallel_fields_accept_params():
    step = parallel(mini_batch_size=Param("mbs", "5"), error_threshold=Param("et", 3))
    assert {p.name for p in step.params()} == {"mbs", "et"}


def test_script_must_stay_inside_source_dir():
    with pytest.raises(SpecError, match="inside source_dir"):
        ScriptStep(name="s", source_dir=SRC, script="../evil.py")


def test_pipeline_orders_steps_by_data_dependency():
    a, b = Output("a"), Output("b")
    first = script("first", "--out", a)
    second = script("second", "--in", a.as_input(), "--out", b)
    third = script("third", "--in", b.as_input())
    pipeline = Pipeline("p", [third, second, first])
    assert [s.name for s in pipeline.ordered_steps()] == ["first", "second", "third"]


def test_pipeline_rejects_inputs_nobody_writes():
    with pytest.raises(SpecError, match="that no step writes"):
        Pipeline("p", [script("s", "--in", Output("ghost").as_input())])


def test_pipeline_rejects_an_output_written_twice():
    out = Output("same")
    with pytest.raises(SpecError, match="written by both"):
        Pipeline("p", [script("a", "--out", out), script("b", "--out", out)])


def test_pipeline_rejects_duplicate_step_names():
    with pytest.raises(SpecError, match="duplicate step names"):
        Pipeline("p", [script("a"), script("a")])


def test_pipeline_rejects_cycles():
    x, y = Output("x"), Output("y")
    with pytest.raises(SpecError, match="cycle"):
        Pipeline("p", [script("a", x, y.as_input()), script("b", y, x.as_input())])


def test_parameters_are_discovered_and_conflicting_defaults_rejected():
    p = Pipeline("p", [script("a", "--n", Param("n", 1)), script("b", "--n", Param("n", 1))])
    assert [x.name for x in p.parameters] == ["n"]
    with pytest.raises(SpecError, match="defined twice"):
        Pipeline("p", [script("a", Param("n", 1)), script("b", Param("n", 2))])


def test_unknown_parameter_names_are_rejected_at_submit():
    p = Pipeline("p", [script("a", "--n", Param("n", 1))])
    with pytest.raises(SpecError, match="has no parameter 'm'"):
        p.resolve_parameters({"m": 3})


@pytest.mark.parametrize(
    ("default", "given", "expected"),
    [(1, "7", 7), (0.5, "0.25", 0.25), (0.5, 2, 2.0), (True, "false", False), ("a", "b", "b")],
)
def test_parameter_overrides_are_coerced_to_the_default_type(default, given, expected):
    p = Pipeline("p", [script("a", Param("v", default))])
    assert p.resolve_parameters({"v": given}) == {"v": expected}


@pytest.mark.parametrize(("default", "given"), [(1, "x"), (1, 1.5), (True, "yes"), (0.5, "z")])
def test_parameter_overrides_of_the_wrong_type_are_rejected(default, given):
    p = Pipeline("p", [script("a", Param("v", default))])
    with pytest.raises(SpecError, match="parameter 'v' takes"):
        p.resolve_parameters({"v": given})


def test_datapath_param_stays_inside_its_datastore():
    with pytest.raises(SpecError, match="stay inside"):
        DataPathParam("d", "store", "../outside")
    with pytest.raises(SpecError, match="stay inside"):
        DataPathParam("d", "store", "/abs")


def test_dataset_input_version_is_latest_or_positive_int():
    assert DatasetInput("ds", 3).version == 3
    with pytest.raises(SpecError, match="version"):
        DatasetInput("ds", 0)
    with pytest.raises(SpecError, match="version"):
        DatasetInput("ds", "2")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"batch": "5 files"}, r"parameter 'batch': ParallelStep 'score': mini_batch_size '5 fi"),
        ({"threshold": -7}, r"parameter 'threshold': .*error_threshold must be an int >= -1"),
    ],
)
def test_a_step_setting_given_as_a_param_is_checked_with_its_value(overrides, message):
    step = parallel(mini_batch_size=Param("batch", "10"), error_threshold=Param("threshold", 5))
    pipeline = Pipeline("p", [step])
    assert pipeline.resolve_parameters({"batch": "2MB", "threshold": -1})["batch"] == "2MB"
    with pytest.raises(SpecError, match=message):
        pipeline.resolve_parameters(overrides)
