"""v2 environments ship this project's runtime when a step imports ``amlops``: a docker build
context with the wheel, read back with azure-ai-ml's own loader, and the wheel installed by pip
in a real subprocess. Offline, no fakes: nothing here talks to a service."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml
from helpers import REPO, copy_repo

from amlops.backends.azureml_v2.environments import (
    BASE_IMAGE,
    IN_IMAGE,
    definition,
    write_build_context,
)
from amlops.backends.azureml_v2.export import export_v2
from amlops.backends.runtime_wheel import steps_needing_runtime
from amlops.config import EnvironmentConfig, load_config
from amlops.content import hash_text
from amlops.deploy import build_pipelines
from amlops.spec import Output, Pipeline, ScriptStep


def test_the_repos_steps_get_a_build_context_with_the_runtime_wheel(tmp_path):
    from azure.ai.ml import load_environment

    config = load_config("dev-v2", REPO)
    pipelines = build_pipelines(config)
    export_v2(config, pipelines, tmp_path)
    [env] = config.environments
    assert env.name in steps_needing_runtime(pipelines, env.name)  # prep imports amlops
    folder = tmp_path / "environments" / env.name
    loaded = load_environment(folder / "environment.yml")
    assert loaded.image is None and loaded.build.dockerfile_path == "Dockerfile"
    # What azure-ai-ml uploads as the build context (then build.path becomes its URL).
    assert Path(loaded.path) == (folder / "context").resolve()
    [wheel] = (folder / "context").glob("amlops-*.whl")
    # The conda file is the configured one plus the wheel, named where the Dockerfile puts it.
    conda = yaml.safe_load((folder / "context" / "conda.yml").read_text())
    original = yaml.safe_load(env.conda_file.read_text())
    pip = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert pip[-1] == f"{IN_IMAGE}/{wheel.name}"
    conda["dependencies"][-1]["pip"] = pip[:-1]
    assert conda == original
    dockerfile = (folder / "context" / "Dockerfile").read_text()
    assert dockerfile.startswith(f"FROM {BASE_IMAGE}\n")
    assert f"COPY conda.yml {wheel.name} {IN_IMAGE}/\n" in dockerfile
    assert re.search(rf"conda env create -p \S+ -f {IN_IMAGE}/conda.yml", dockerfile)


def test_the_wheel_installs_with_pip_and_its_runtime_imports(tmp_path):
    env = EnvironmentConfig("e", REPO / "pipelines" / "environments" / "train.yml")
    context = write_build_context(env, REPO, tmp_path / "context")
    [wheel] = context.glob("amlops-*.whl")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(target), str(wheel)],
        check=True,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", "import amlops, amlops.runtime; print(amlops.__file__)"],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
        check=True,
    )
    assert done.stdout.strip().startswith(str(target))


def test_an_environment_no_step_imports_amlops_with_stays_the_conda_file_on_the_image(tmp_path):
    folder = tmp_path / "step"
    folder.mkdir()
    (folder / "main.py").write_text("import json\n")
    step = ScriptStep(name="s", source_dir=folder, script="main.py", arguments=["--o", Output("o")])
    pipeline = Pipeline("p", [step])
    assert steps_needing_runtime([pipeline], "e") == set()
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies: [python=3.11, pip, {pip: [pandas==2.3.3]}]\n")
    defn = definition(EnvironmentConfig("e", conda), REPO, needs_runtime=False)
    # The fingerprint an environment had before the runtime shipped: no new version for it.
    assert (defn.runtime, defn.fingerprint) == (
        False,
        hash_text(conda.read_text(), BASE_IMAGE)[:16],
    )


def test_a_listed_amlops_is_replaced_and_the_runtime_sources_are_fingerprinted(tmp_path):
    project = copy_repo(tmp_path / "repo")
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies: [python=3.11, pip, {pip: [pandas==2.3.3, amlops==0.1]}]\n")
    env = EnvironmentConfig("e", conda)
    first = definition(env, project, needs_runtime=False)
    assert first.runtime  # listed under pip: the package is on no index, so it is shipped
    context = write_build_context(env, project, tmp_path / "context")
    pip = yaml.safe_load((context / "conda.yml").read_text())["dependencies"][-1]["pip"]
    assert pip[0] == "pandas==2.3.3" and pip[1].startswith(f"{IN_IMAGE}/amlops-")
    assert len(pip) == 2
    runtime = project / "src" / "amlops" / "runtime.py"
    runtime.write_text(runtime.read_text() + "\n# changed\n")
    assert definition(env, project, needs_runtime=False).fingerprint != first.fingerprint
