"""amlops reads the MLflow model registry's tables itself (no mlflow import): the answer must
be MlflowClient's, on a real registry with several models, aliases, tags and a deletion."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from amlops.backends.local.models import _from_client, _from_tables, registered_models
from amlops.backends.local.workspace import LocalWorkspace

BUILD = """\
import sys
import mlflow
from mlflow import MlflowClient

mlflow.set_tracking_uri(sys.argv[1])
client = MlflowClient()
with mlflow.start_run() as run:
    pass
for name in ("alpha", "beta"):
    client.create_registered_model(name)
    for _ in range(3):
        version = client.create_model_version(name, "file:///tmp/x", run.info.run_id)
        client.set_model_version_tag(name, version.version, "metric.r2", str(version.version))
client.set_registered_model_alias("alpha", "production", "2")
client.set_registered_model_alias("alpha", "candidate", "3")
client.set_registered_model_alias("beta", "production", "3")
client.delete_model_version("beta", "2")
"""


def test_the_table_reading_equals_mlflow_client(tmp_path: Path):
    ws = LocalWorkspace(tmp_path)
    subprocess.run([sys.executable, "-c", BUILD, ws.mlflow_uri], check=True, capture_output=True)
    ours = registered_models(ws)
    key = lambda m: (m["name"], -int(m["version"]))  # noqa: E731
    assert ours == sorted(_from_tables(tmp_path / "mlflow.db"), key=key)
    assert ours == sorted(_from_client(ws), key=key)
    assert [(m["name"], m["version"], m["aliases"]) for m in ours] == [
        ("alpha", "3", ["candidate"]),
        ("alpha", "2", ["production"]),
        ("alpha", "1", []),
        ("beta", "3", ["production"]),
        ("beta", "1", []),
    ]
    assert ours[0]["tags"] == {"metric.r2": "3"}


def test_models_list_does_not_import_mlflow(tmp_path: Path):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "from amlops.backends.local.models import registered_models\n"
        "from amlops.backends.local.workspace import LocalWorkspace\n"
        "registered_models(LocalWorkspace(Path(sys.argv[1])))\n"
        "print('mlflow' in sys.modules)\n"
    )
    ws = LocalWorkspace(tmp_path)
    subprocess.run([sys.executable, "-c", BUILD, ws.mlflow_uri], check=True, capture_output=True)
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr
