"""The web page of `amlops serve`, in a real headless browser.

Chromium is the distribution's (/usr/bin/chromium), driven by playwright-core from
tools/browser; `make tools` installs both when missing. A missing one fails this test, never
skips it. The test saves a screenshot of the page; with AMLOPS_SAVE_SCREENSHOT=1 it also
replaces docs/web-page.png, the one the README shows.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import REPO

from amlops.backends.local.backend import LocalBackend
from amlops.config import DatasetConfig, EnvironmentConfig, Recurrence, ScheduleConfig
from amlops.spec import DatasetInput, Output, Param, Pipeline, ScriptStep

CHROMIUM = Path(os.environ.get("AMLOPS_CHROMIUM", "/usr/bin/chromium"))
DRIVER = REPO / "tools" / "browser" / "check_page.cjs"
PLAYWRIGHT = REPO / "tools" / "browser" / "node_modules" / "playwright-core"
SUBMIT = "/pipelines/v1.0/PipelineRuns/PipelineEndpointSubmit/Name/"
SCREENSHOT = REPO / "docs" / "web-page.png"

PREP = """\
import sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
rows = Path(args["--data"], "rows.csv").read_text().splitlines()
print(f"read {len(rows)} rows from {args['--data']}")
Path(args["--out"], "clean.csv").write_text("\\n".join(rows[1:]))
print("wrote clean.csv")
"""
TRAIN = """\
import sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
for epoch in range(1, int(args["--epochs"]) + 1):
    print(f"epoch {epoch}: loss {1 / epoch:.3f}")
print("warning: a small data set", file=sys.stderr)
Path(args["--model"], "model.txt").write_text("weights")
"""
EVALUATE = """\
import json, sys
from pathlib import Path
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
Path(args["--report"], "metrics.json").write_text(json.dumps({"auc": 0.87}))
print("auc 0.87")
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repo with a published three-step pipeline, a schedule, and config/local.yml."""
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "local.yml").write_text("workspace:\n  path: ws\n")
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text("age,bmi\n" + "".join(f"{i},{i / 3:.1f}\n" for i in range(40)))
    conda = tmp_path / "conda.yml"
    conda.write_text("dependencies: [python=3.11]\n")
    steps = {}
    for name, code in (("prep", PREP), ("train", TRAIN), ("evaluate", EVALUATE)):
        steps[name] = tmp_path / "steps" / name
        steps[name].mkdir(parents=True)
        (steps[name] / "main.py").write_text(code)
    clean, model, report = Output("clean"), Output("model"), Output("report")

    def step(name, *args):
        return ScriptStep(name, steps[name], arguments=list(args), environment="train-env")

    pipeline = Pipeline(
        "train",
        [
            step("prep", "--data", DatasetInput("diabetes-data"), "--out", clean),
            step("train", "--clean", clean.as_input(), "--epochs", Param("epochs", 3),
                 "--model", model),
            step("evaluate", "--model", model.as_input(), "--report", report),
        ],
        description="prepare, train and evaluate",
    )  # fmt: skip
    backend = LocalBackend(tmp_path / "ws")
    try:
        dataset = DatasetConfig(name="diabetes-data", kind="file", path=data)
        backend.register_datasets([dataset], plan=False)
        environment = EnvironmentConfig(name="train-env", conda_file=conda)
        backend.register_environments([environment], plan=False)
        backend.build([pipeline], plan=False)
        backend.publish([pipeline], plan=False)
        nightly = Recurrence(frequency="Day", interval=1, hours=(2,), minutes=(30,))
        backend.schedule(
            [ScheduleConfig("nightly-train", "train", recurrence=nightly)],
            plan=False,
            pipelines=[pipeline],
        )
    finally:
        backend.close()
    return tmp_path


def post(url: str, token: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {token}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def finished(url: str, token: str, run_id: str) -> dict:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        request = urllib.request.Request(f"{url}/pipelines/v1.0/PipelineRuns/{run_id}")
        request.add_header("Authorization", f"Bearer {token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            run = json.loads(response.read())
        if run["Status"]["StatusCode"] in ("Completed", "Failed", "Canceled"):
            return run
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} did not finish")


def test_the_page_shows_endpoints_schedules_runs_a_graph_and_logs(repo, tmp_path):
    node = shutil.which("node")
    for missing, what in (
        (not CHROMIUM.exists(), f"Chromium at {CHROMIUM}"),
        (node is None, "node"),
        (not PLAYWRIGHT.exists(), "playwright-core in tools/browser"),
    ):
        if missing:
            pytest.fail(f"the web page test needs {what}: run make tools")
    log = tmp_path / "serve.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "amlops.cli", "serve", "--root", str(repo), "--port", "0",
             "--no-schedules"],
            stdout=subprocess.PIPE, stderr=err, text=True,
        )  # fmt: skip
    try:
        url = proc.stdout.readline().split(" on ")[1].split()[0]
        link = proc.stdout.readline().removeprefix("web page: ").strip()
        token = link.partition("?token=")[2]
        first = post(url + SUBMIT + "train", token, {"ExperimentName": "web"})
        assert finished(url, token, first["Id"])["Status"]["StatusCode"] == "Completed"
        body = {"ExperimentName": "web", "ParameterAssignments": {"epochs": 5}}
        second = post(url + SUBMIT + "train", token, body)
        run = finished(url, token, second["Id"])
        assert run["Status"]["StatusCode"] == "Completed"
        shot = tmp_path / "web-page.png"
        want = {
            "link": link, "base": url, "runId": second["Id"], "step": "train",
            "expectLog": "epoch 5: loss 0.200", "screenshot": str(shot),
        }  # fmt: skip
        started = time.monotonic()
        driven = subprocess.run(
            [node, str(DRIVER), json.dumps(want)], capture_output=True, text=True, timeout=180
        )
        assert driven.returncode == 0, driven.stderr[-3000:] + log.read_text()[-2000:]
        seen = json.loads(driven.stdout)
        print(f"browser check: {time.monotonic() - started:.1f} s")
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        finally:
            proc.kill()
            proc.stdout.close()

    # The token: refused without it; the printed link trades it for a cookie and drops it.
    assert seen["withoutToken"] == 401
    assert seen["linkStatus"] == 200 and seen["urlAfterLink"] == url + "/"
    assert [c["httpOnly"] for c in seen["cookies"]] == [True]
    # The overview: endpoints with versions, the schedule's next fire time, the runs.
    assert seen["headings"] == ["Pipeline endpoints", "Schedules", "Runs"]
    assert "v0 (default)" in seen["overviewText"] and "nightly-train" in seen["overviewText"]
    assert "every day at 02:30 (UTC)" in seen["overviewText"]
    assert first["Id"] in seen["overviewText"] and second["Id"] in seen["overviewText"]
    # The graph: the three steps and the dataset, joined by their data; prep was reused.
    nodes = {n["id"]: n for n in seen["nodes"]}
    assert set(nodes) == {
        "dataset:diabetes-data:latest", "step:prep", "step:train", "step:evaluate"
    }  # fmt: skip
    assert "reused" in nodes["step:prep"]["classes"].split()
    assert "Completed" in nodes["step:train"]["classes"].split()
    assert {(e["from"], e["to"], e["label"]) for e in seen["edges"]} == {
        ("dataset:diabetes-data:latest", "step:prep", "diabetes_data"),
        ("step:prep", "step:train", "clean"),
        ("step:train", "step:evaluate", "model"),
    }
    # The step: its logs, its outputs and the command it was given.
    assert "epoch 1: loss 1.000" in seen["stdout"] and "epoch 5: loss 0.200" in seen["stdout"]
    assert "model.txt" in seen["stepPanel"] and "--epochs 5" in seen["stepPanel"]
    assert "Why it ran" in seen["stepPanel"] and "parameter epochs: 3 -> 5" in seen["stepPanel"]
    assert seen["hash"] == f"#/runs/{second['Id']}/train"
    assert seen["consoleErrors"] == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("AMLOPS_SAVE_SCREENSHOT") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, SCREENSHOT)
