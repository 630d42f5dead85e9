"""SweepStep and AutoMLStep refuse what Azure ML refuses, before any backend sees it; the local
samplers and early termination policies behave as v1 documents them."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from helpers import REPO

from amlops.config import load_config
from amlops.deploy import build_pipelines
from amlops.errors import ConfigError
from amlops.spec import (
    AutoMLStep,
    EarlyTermination,
    Output,
    SearchParam,
    SpecError,
    SweepStep,
)
from amlops.sweep.policy import due, should_stop
from amlops.sweep.sampling import BayesianSampler, RandomSampler, draw, grid

UNIFORM = SearchParam("lr", "uniform", (0.01, 0.3))


def sweep(tmp_path: Path, **kw) -> SweepStep:
    (tmp_path / "main.py").write_text("")
    values = {"search_space": [UNIFORM], "primary_metric_name": "val_rmse", **kw}
    return SweepStep("sweep", tmp_path, **values)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        (
            {"sampling": "bayesian", "search_space": [SearchParam("lr", "loguniform", (-5, -1))]},
            "bayesian sampling does not take loguniform",
        ),
        (
            {"sampling": "grid", "search_space": [UNIFORM]},
            "grid sampling does not take uniform",
        ),
        (
            {"sampling": "bayesian", "early_termination": EarlyTermination("median_stopping")},
            "bayesian sampling does not support early termination",
        ),
        (
            {
                "sampling": "bayesian",
                "search_space": [SearchParam("n", "quniform", (50, 250.0, 50))],
            },
            "bayesian sampling takes quniform with int bounds",
        ),
        (
            {"sampling": "bayesian", "search_space": [SearchParam("n", "quniform", (0, 10**6, 1))]},
            "more than 100000 points",
        ),
        ({"max_total_runs": 1001}, "max_total_runs must be an int between 1 and 1000"),
        ({"max_total_runs": 4, "max_concurrent_runs": 5}, "max_concurrent_runs"),
        ({"max_duration_minutes": 10081}, "max_duration_minutes"),
        ({"primary_metric_goal": "up"}, "maximize or minimize"),
        ({"arguments": ["--lr", "0.1"]}, "--lr is both a fixed argument and a searched"),
    ],
)
def test_sweep_refuses_what_azure_refuses(tmp_path, kw, message):
    with pytest.raises(SpecError, match=message):
        sweep(tmp_path, **kw)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("x", "uniform", (1, 1)), "min_value < max_value"),
        (("x", "randint", (0,)), "positive int"),
        (("x", "quniform", (1, 5)), "quniform takes 3 numbers"),
        (("x", "choice", ()), "one or more"),
        (("x", "lognormal", (0, 1)), "expression must be one of"),
    ],
)
def test_parameter_expressions_are_checked(args, message):
    with pytest.raises(SpecError, match=message):
        SearchParam(*args)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"policy": "bandit"}, "exactly one of slack_factor or slack_amount"),
        ({"policy": "bandit", "slack_factor": 0.1, "slack_amount": 1}, "exactly one"),
        ({"policy": "truncation_selection", "truncation_percentage": 100}, "1..99"),
        ({"policy": "median_stopping", "evaluation_interval": 0}, "evaluation_interval"),
    ],
)
def test_policies_are_checked(kw, message):
    with pytest.raises(SpecError, match=message):
        EarlyTermination(**kw)


def automl(**kw) -> AutoMLStep:
    values = {
        "training_data": Output("prepared").as_input(),
        "metrics_output": Output("m"),
        "model_output": Output("model"),
        "label_column_name": "y",
        **kw,
    }
    return AutoMLStep("automl", **values)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"task": "regression", "primary_metric": "accuracy"}, "not an Azure ML regression"),
        ({"task": "classification", "primary_metric": "rmse"}, "not an Azure ML classification"),
        ({"experiment_timeout_minutes": 5}, "between 15 and 525600"),
        ({"iterations": 0}, "iterations must be an int between 1 and 1000"),
        ({"n_cross_validations": 1}, "n_cross_validations"),
        ({"n_cross_validations": 3, "validation_size": 0.2}, "not both"),
        ({"allowed_models": ["LightGBM"]}, "not a regression model"),
        ({"arguments": ["--x"]}, "takes no arguments"),
        ({"model_output": None}, "model_output must be an Output"),
    ],
)
def test_automl_refuses_what_azure_refuses(kw, message):
    with pytest.raises(SpecError, match=message):
        automl(**kw)


def test_automl_defaults_to_the_tasks_first_azure_metric():
    assert automl(task="classification").primary_metric == "accuracy"
    assert automl().primary_metric == "normalized_root_mean_squared_error"


def test_grid_is_every_combination_in_order():
    space = [
        {"name": "a", "expression": "choice", "values": [1, 2]},
        {"name": "b", "expression": "choice", "values": ["x", "y"]},
    ]
    assert grid(space) == [
        {"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 2, "b": "x"}, {"a": 2, "b": "y"},
    ]  # fmt: skip


def test_random_and_bayesian_sampling_are_seeded_and_follow_v1_semantics():
    space = [
        {"name": "lr", "expression": "loguniform", "values": [-5, -1]},
        {"name": "n", "expression": "quniform", "values": [50, 250, 50]},
        {"name": "k", "expression": "randint", "values": [3]},
    ]
    first = [RandomSampler(space, 7).ask()[1] for _ in range(1)]
    again = [RandomSampler(space, 7).ask()[1] for _ in range(1)]
    assert first == again
    rng = random.Random(0)
    lrs = [draw(space[0], rng) for _ in range(200)]
    assert all(0.0067 < x < 0.368 for x in lrs)  # exp(-5) .. exp(-1): the bounds are exponents
    ns = {draw(space[1], rng) for _ in range(200)}
    assert ns <= {50, 100, 150, 200, 250} and all(isinstance(n, int) for n in ns)
    assert {draw(space[2], rng) for _ in range(100)} == {0, 1, 2}

    bayes_space = [
        {"name": "lr", "expression": "uniform", "values": [0.0, 1.0]},
        {"name": "d", "expression": "choice", "values": [2, 3]},
    ]

    def proposals(seed):
        s = BayesianSampler(bayes_space, seed, "minimize")
        out = []
        for _ in range(12):
            token, values = s.ask()
            s.tell(token, (values["lr"] - 0.3) ** 2)
            out.append(values)
        return out

    assert proposals(3) == proposals(3)


def test_early_termination_policies():
    bandit = {"policy": "bandit", "evaluation_interval": 1, "delay_evaluation": 0,
              "slack_factor": 0.1, "slack_amount": None}  # fmt: skip
    assert should_stop([0.5], [[0.9]], bandit, "maximize")  # 0.5 < 0.9 / 1.1
    assert not should_stop([0.85], [[0.9]], bandit, "maximize")
    assert should_stop([1.5], [[1.0]], bandit, "minimize")  # 1.5 > 1.0 * 1.1
    assert not should_stop([0.5], [], bandit, "maximize")  # nobody to compare with
    median = {"policy": "median_stopping", "evaluation_interval": 1, "delay_evaluation": 0}
    assert should_stop([0.1, 0.2], [[0.5, 0.6], [0.4, 0.7]], median, "maximize")
    assert not should_stop([0.1, 0.9], [[0.5, 0.6], [0.4, 0.7]], median, "maximize")
    trunc = {"policy": "truncation_selection", "evaluation_interval": 1,
             "delay_evaluation": 0, "truncation_percentage": 50}  # fmt: skip
    assert should_stop([0.1], [[0.5], [0.6], [0.7]], trunc, "maximize")
    assert not should_stop([0.65], [[0.5], [0.6], [0.7]], trunc, "maximize")
    assert due(4, {"evaluation_interval": 2, "delay_evaluation": 3})
    assert not due(2, {"evaluation_interval": 2, "delay_evaluation": 3})
    assert not due(5, {"evaluation_interval": 2, "delay_evaluation": 3})


def write_env(tmp_path: Path, sweep_body: str) -> Path:
    text = (REPO / "config" / "local-tuning.yml").read_text()
    start = text.index("    sweep:\n")
    end = text.index("  train_automl:")
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bad.yml").write_text(text[:start] + sweep_body + text[end:])
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")
    return tmp_path


@pytest.mark.parametrize(
    ("body", "key", "message"),
    [
        (
            "    sweep:\n      sampling: bayesian\n      primary_metric: val_rmse\n"
            "      search_space:\n        learning_rate: {loguniform: [-5, -1]}\n",
            "pipelines.train.sweep.sampling",
            "bayesian sampling does not take loguniform",
        ),
        (
            "    sweep:\n      primary_metric: rmse\n"
            "      search_space:\n        learning_rate: {uniform: [0.01, 0.2]}\n",
            "pipelines.train.sweep.primary_metric",
            "must be one of val_rmse",
        ),
        (
            "    sweep:\n      primary_metric: val_rmse\n      max_total_runs: 5000\n"
            "      search_space:\n        learning_rate: {uniform: [0.01, 0.2]}\n",
            "pipelines.train.sweep.max_total_runs",
            "between 1 and 1000",
        ),
        (
            "    sweep:\n      primary_metric: val_rmse\n      trials: 3\n"
            "      search_space:\n        learning_rate: {uniform: [0.01, 0.2]}\n",
            "pipelines.train.sweep.trials",
            "unknown key (allowed: early_termination,",
        ),
    ],
)
def test_bad_tuning_config_is_one_line_naming_file_and_key(tmp_path, body, key, message):
    root = write_env(tmp_path, body)
    with pytest.raises(ConfigError) as caught:
        build_pipelines(load_config("bad", root))
    text = str(caught.value)
    assert "\n" not in text
    assert f"bad.yml: {key}:" in text and message in text


def test_a_bad_automl_metric_is_named(tmp_path):
    text = (REPO / "config" / "local-tuning.yml").read_text()
    (tmp_path / "config").mkdir()
    bad = text.replace(
        "primary_metric: normalized_root_mean_squared_error", "primary_metric: accuracy"
    )
    (tmp_path / "config" / "bad.yml").write_text(bad)
    (tmp_path / "pipelines").symlink_to(REPO / "pipelines")
    with pytest.raises(ConfigError, match=r"bad.yml: pipelines.train_automl.automl.primary_metric"):
        build_pipelines(load_config("bad", tmp_path))
