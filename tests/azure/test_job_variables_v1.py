"""What a compiled v1 step's job is given beyond AML's own variables: the commit deployed.

Published through the SDK's graph code and its DryRunServiceCaller; the runconfig read back
is the one each module node of the published graph carries to the service.
"""

from __future__ import annotations

import json
import subprocess

import pytest
from aml_offline import batch_pipeline, chain_pipeline, make_backend, write_config


@pytest.fixture
def committed(project):
    """The project as a git checkout with one commit; its sha."""
    git = ["git", "-C", str(project), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "deployed"], check=True)
    out = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def job_variables(dry_run, published_pipeline_id: str) -> dict[str, dict[str, str]]:
    graph, _ = dry_run.published_graph(published_pipeline_id)
    return {
        dry_run.caller._module_entities[node.module_id].name: json.loads(node.runconfig)[
            "environmentVariables"
        ]
        for node in graph.module_nodes
    }


def test_every_compiled_step_job_gets_the_commit_deployed(
    workspace, dry_run, assets, project, committed
):
    config = write_config(project)
    backend = make_backend(workspace, config, assets, dry_run)
    backend.register_datasets(config.datasets, plan=False)
    backend.register_environments(config.environments, plan=False)
    changes = backend.publish([chain_pipeline(project), batch_pipeline(project)], plan=False)
    seen = {}
    for change in changes:
        seen.update(job_variables(dry_run, change.detail["published_pipeline_id"]))
    # PythonScriptSteps and the ParallelRunStep (whose config is copied into its runconfig).
    assert set(seen) == {"prep", "train", "score"}
    assert {name: v.get("AMLOPS_GIT_COMMIT") for name, v in seen.items()} == {
        name: committed for name in seen
    }
