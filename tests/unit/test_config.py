"""Bad configuration gets one line naming the file and key, exit code 2, and nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, SAMPLE_CONFIG, copy_repo

from amlops.cli import deploy_main
from amlops.config import load_config

GOOD = yaml.safe_load(SAMPLE_CONFIG.read_text())


def _with(path: str, value) -> dict:
    """GOOD with the dotted ``path`` set to ``value`` (``...`` deletes the key)."""
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[key]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return doc


BAD_CONFIGS = [
    # (what is wrong, document, text the error must contain)
    ("unknown top-level key", _with("workspaces", {}), "workspaces: unknown key"),
    ("unknown backend", _with("workspace.backend", "aws"), "workspace.backend: must be one of"),
    ("dataset kind", _with("datasets.diabetes.kind", "image"), "datasets.diabetes.kind"),
    ("dataset missing kind", _with("datasets.diabetes.kind", ...), "datasets.diabetes.kind"),
    (
        "dataset path missing",
        _with("datasets.diabetes", {"kind": "tabular", "path": "nope.csv"}),
        "datasets.diabetes.path: 'nope.csv' does not exist",
    ),
    (
        "dataset source and path",
        _with("datasets.diabetes.path", "config/local.yml"),
        "datasets.diabetes: give either source or path",
    ),
    (
        "unknown sample",
        _with("datasets.diabetes.source", "kaggle:titanic"),
        "datasets.diabetes.source",
    ),
    ("bad dataset name", _with("datasets.bad name!", {"kind": "file"}), "datasets.bad name!"),
    (
        "conda file missing",
        _with("environments.amlops-train.conda_file", "envs/none.yml"),
        "environments.amlops-train.conda_file",
    ),
    (
        "parameter of a list type",
        _with("pipelines.train.parameters.seed", [1, 2]),
        "pipelines.train.parameters.seed: must be a number",
    ),
    (
        "parameter of the wrong type",
        _with("pipelines.train.parameters.n_estimators", "many"),
        "pipelines.train.parameters.n_estimators: must be int",
    ),
    (
        "unknown train parameter",
        _with("pipelines.train.parameters.epochs", 3),
        "pipelines.train.parameters.epochs: not a train parameter",
    ),
    ("train task", _with("pipelines.train.task", "ranking"), "pipelines.train.task"),
    ("train target missing", _with("pipelines.train.target", ...), "pipelines.train.target"),
    (
        "pipeline module missing",
        _with("pipelines.nope", {}),
        "no pipeline module pipelines/nope.py",
    ),
    (
        "schedule for an unknown pipeline",
        _with("schedules", {"nightly": {"pipeline": "ghost", "recurrence": {"frequency": "Day"}}}),
        "schedules.nightly.pipeline",
    ),
    (
        "schedule hour out of range",
        _with(
            "schedules",
            {"n": {"pipeline": "train", "recurrence": {"frequency": "Day", "hours": [25]}}},
        ),
        "schedules.n.recurrence.hours",
    ),
    (
        "schedule with both triggers",
        _with(
            "schedules",
            {
                "n": {
                    "pipeline": "train",
                    "recurrence": {"frequency": "Day"},
                    "datastore_trigger": {"datastore": "d", "path": "p"},
                }
            },
        ),
        "schedules.n: needs exactly one of recurrence or datastore_trigger",
    ),
    (
        "schedule time zone unknown",
        _with(
            "schedules",
            {"n": {"pipeline": "train", "recurrence": {"frequency": "Day", "time_zone": "Mars"}}},
        ),
        "schedules.n.recurrence.time_zone: unknown time zone 'Mars'",
    ),
    (
        "schedule start time not a date",
        _with(
            "schedules",
            {
                "n": {
                    "pipeline": "train",
                    "recurrence": {"frequency": "Day", "start_time": "2024-13-45T99:00"},
                }
            },
        ),
        "schedules.n.recurrence.start_time: '2024-13-45T99:00' is not a time",
    ),
    ("not a mapping", ["a", "list"], "(top level): must be a mapping"),
]


def _write(root: Path, doc) -> Path:
    (root / "config").mkdir(parents=True, exist_ok=True)
    for folder in ("pipelines",):
        target = root / folder
        if not target.exists():
            target.symlink_to(REPO / folder)
    (root / "config" / "bad.yml").write_text(yaml.safe_dump(doc))
    return root / "config" / "bad.yml"


@pytest.mark.parametrize(("what", "doc", "expected"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_one_line_naming_file_and_key(tmp_path, capsys, what, doc, expected):
    file = _write(tmp_path, doc)
    (tmp_path / "pipelines" / "..").resolve()
    code = deploy_main(["--root", str(tmp_path), "--env", "bad"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert len(err.splitlines()) == 1, err
    assert str(file) in err
    assert expected in err
    assert not (tmp_path / ".amlops").exists(), "a rejected config must write nothing"


def test_invalid_yaml_names_the_line(tmp_path, capsys):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bad.yml").write_text("workspace:\n  path: [unclosed\n")
    assert deploy_main(["--root", str(tmp_path), "--env", "bad"]) == 2
    err = capsys.readouterr().err
    assert "bad.yml: line" in err and "not valid YAML" in err


def test_unknown_env_lists_the_available_ones(capsys):
    assert deploy_main(["--root", str(REPO), "--env", "staging"]) == 2
    err = capsys.readouterr().err
    assert "--env 'staging'" in err and "local" in err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--stage", "teleport"], "--stage: invalid choice"),
        (["--param", "no-equals"], "--param 'no-equals'"),
        (["--param", "ghost.x=1"], "no pipeline 'ghost'"),
        (
            ["--tf-dir", "infra"],
            "--tf-dir: --env local uses the local backend; --tf-dir is for the azureml_v1 and "
            "azureml_v2 backends",
        ),
        (["--param", "train.epochs=3"], "--param: pipeline 'train' has no parameter 'epochs'"),
        (["--param", "train.seed=abc"], "--param: parameter 'seed' takes int"),
    ],
)
def test_bad_arguments_exit_2(tmp_path, capsys, args, expected):
    root = copy_repo(tmp_path / "repo")
    assert deploy_main(["--root", str(root), *args]) == 2
    assert expected in capsys.readouterr().err
    assert not (root / ".amlops").exists()


def test_exit_code_and_single_line_from_a_real_process(tmp_path):
    file = _write(tmp_path, _with("pipelines.train.task", "ranking"))
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "deploy.py"),
            "--root",
            str(tmp_path),
            "--env",
            "bad",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and str(file) in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("env", sorted(p.stem for p in (REPO / "config").glob("*.yml")))
def test_every_config_in_the_repository_loads(env):
    """Whatever the user made of them: what deploy --env would read must load."""
    assert load_config(env, REPO).env == env


def test_the_sample_config_loads(tmp_path):
    config = load_config("local", copy_repo(tmp_path / "repo"))
    assert config.workspace.backend == "local"
    assert {d.name for d in config.datasets} == {"diabetes", "diabetes-scoring"}
    assert config.pipeline("train").settings["task"] == "regression"


@pytest.mark.parametrize("path", [..., None, ""])
def test_a_trigger_without_a_path_watches_the_datastore_root(tmp_path, path):
    """v1's path_on_datastore is optional: without it the container's top level is watched."""
    trigger = {"datastore": "workspaceblobstore"} | ({} if path is ... else {"path": path})
    doc = _with("schedules", {"on-data": {"pipeline": "batch_score", "datastore_trigger": trigger}})
    copy_repo(tmp_path / "repo")
    (tmp_path / "repo" / "config" / "local.yml").write_text(yaml.safe_dump(doc))
    [schedule] = load_config("local", tmp_path / "repo").schedules
    assert schedule.datastore_trigger.path is None
    assert schedule.datastore_trigger.blob_path("new.csv") == "workspaceblobstore/new.csv"
