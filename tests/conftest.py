"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import copy_repo

from amlops.backends.local.backend import LocalBackend
from amlops.config import DatasetConfig, EnvironmentConfig
from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep


@pytest.fixture
def repo_copy(tmp_path: Path) -> Path:
    """The repository copied (with the sample config) so a test may edit it; workspace inside."""
    return copy_repo(tmp_path / "repo")


STEP_SCRIPT = """\
import json, sys
from pathlib import Path

args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
out = Path(args.pop("--out"))
if args.get("--fail") == "yes":
    print("something broke in", sys.argv[0], file=sys.stderr)
    sys.exit(3)
text = {k: (Path(v).joinpath("data.txt").read_text() if k.startswith("--in") else v)
        for k, v in args.items()}
(out / "data.txt").write_text(json.dumps(text, sort_keys=True))
(out / "argv.json").write_text(json.dumps(sys.argv[1:]))
"""


@dataclass(frozen=True)
class Toy:
    backend: LocalBackend
    pipeline: Callable[..., Pipeline]  # pipeline(fail_in=None): a fresh spec each call
    root: Path  # tmp_path: steps/<name>/ are the step folders, data/ the dataset's files
    dataset: DatasetConfig
    environment: EnvironmentConfig


@pytest.fixture
def toy(tmp_path: Path):
    """A three-step toy pipeline (a -> b -> c, plus a parameter only b uses) and a workspace."""
    for name in ("a", "b", "c"):
        folder = tmp_path / "steps" / name
        folder.mkdir(parents=True)
        (folder / "main.py").write_text(STEP_SCRIPT)
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.txt").write_text("rows v1")
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies: [python=3.11]\n")

    backend = LocalBackend(tmp_path / "ws")
    dataset = DatasetConfig(name="toy-data", kind="file", path=data)
    environment = EnvironmentConfig(name="toy-env", conda_file=conda)
    backend.register_datasets([dataset], plan=False)
    backend.register_environments([environment], plan=False)

    def pipeline(fail_in: str | None = None) -> Pipeline:
        oa, ob, oc = Output("oa"), Output("ob"), Output("oc")

        def step(name, *args):
            extra = ["--fail", "yes"] if name == fail_in else []
            return ScriptStep(
                name=name,
                source_dir=tmp_path / "steps" / name,
                script="main.py",
                arguments=[*args, *extra],
                environment="toy-env",
            )

        return Pipeline(
            "toy",
            [
                step("a", "--in_data", DatasetInput("toy-data"), "--seed", Param("seed", 1),
                     "--out", oa),
                step("b", "--in_a", oa.as_input(), "--alpha", Param("alpha", 0.5), "--out", ob),
                step("c", "--in_b", ob.as_input(), "--out", oc),
            ],
        )  # fmt: skip

    yield Toy(backend, pipeline, tmp_path, dataset, environment)
    backend.close()
