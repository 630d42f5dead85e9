"""The deploy stages: config -> spec -> backend, idempotent, with a plan and a manifest."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from amlops.backends.base import Backend, Change, RunResult
from amlops.binding import check_bindings
from amlops.config import Config
from amlops.content import hash_text
from amlops.errors import ConfigError, RunFailed
from amlops.spec import Pipeline, SpecError


@dataclass
class Manifest:
    env: str
    backend: str
    plan: bool
    datasets: list[dict[str, Any]] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    schedules: list[dict[str, Any]] = field(default_factory=list)
    changes: int = 0
    # Pipelines whose run failed: not published, their schedules left as they were.
    held_back: list[str] = field(default_factory=list)

    def add(self, section: str, changes: Sequence[Change]) -> None:
        for change in changes:
            entry = {"name": change.name, "version": change.version, "action": change.action}
            entry.update(change.detail)
            getattr(self, section).append(entry)
            self.changes += change.changed

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def build_pipelines(config: Config) -> list[Pipeline]:
    """Load ``pipelines/<name>.py`` of ``config.root`` for each configured pipeline and build
    its spec. Nothing global changes: two repositories' pipelines can be built in one process."""
    built = []
    dataset_kinds = {ds.name: ds.kind for ds in config.datasets}
    for cfg in config.pipelines:
        module = _load_pipeline_module(config.root / "pipelines" / f"{cfg.name}.py", cfg.where)
        try:
            pipeline = module.build(cfg, config.compute)
        except SpecError as exc:
            raise ConfigError(f"{cfg.where}: {exc}") from None
        check_bindings(pipeline, dataset_kinds, cfg.where)
        built.append(pipeline)
    return built


def _load_pipeline_module(file: Path, where: str) -> ModuleType:
    if not file.is_file():
        raise ConfigError(f"{where}: no pipeline module pipelines/{file.name}")
    # A name of its own per file, in sys.modules only while the module body runs (dataclasses
    # look their module up there), so no other repository's module is ever found instead.
    name = f"_amlops_pipeline_{hash_text(str(file.resolve()))[:12]}_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    if not callable(getattr(module, "build", None)):
        raise ConfigError(f"{where}: pipelines/{file.name} has no build(cfg, compute) function")
    return module


def git_commit(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out.stdout.strip()


def resolve_stages(requested: str, available: Sequence[str], backend: str) -> list[str]:
    if requested == "all":
        return list(available)
    if requested not in available:
        raise ConfigError(
            f"--stage {requested}: not a stage of the {backend} backend "
            f"(stages: {', '.join(available)}, all)"
        )
    return [requested]


def deploy(
    config: Config,
    backend: Backend,
    pipelines: list[Pipeline],
    stages: Sequence[str],
    *,
    plan: bool,
    regenerate_outputs: bool = False,
    parameters: dict[str, dict[str, Any]] | None = None,
    only: Collection[str] | None = None,
) -> Manifest:
    """Run the stages in order against ``backend``; with ``plan`` change nothing.

    ``pipelines`` are the ones this deploy builds, runs and publishes; ``only`` names them when
    they are a choice (``--pipeline``), so the schedule stage leaves other pipelines'
    schedules alone. A pipeline whose run fails is held back: not published, its schedules
    untouched; the others go on, and RunFailed is raised at the end, with the manifest.
    """
    manifest = Manifest(env=config.env, backend=backend.name, plan=plan)
    if "register" in stages:
        manifest.add("datasets", backend.register_datasets(config.datasets, plan=plan))
        manifest.add("environments", backend.register_environments(config.environments, plan=plan))
    if "build" in stages:
        manifest.add("pipelines", backend.build(pipelines, plan=plan))
    failures: dict[str, str] = {}
    if "run" in stages:
        failures = _run_stage(
            config, backend, pipelines, manifest, plan, regenerate_outputs, parameters
        )
    manifest.held_back = list(failures)
    ready = [p for p in pipelines if p.name not in failures]
    if "publish" in stages:
        manifest.add("endpoints", backend.publish(ready, plan=plan))
    if "schedule" in stages:
        scope = None
        if only is not None or manifest.held_back:
            scope = {p.name for p in ready}
        schedules = [s for s in config.schedules if scope is None or s.pipeline in scope]
        manifest.add(
            "schedules", backend.schedule(schedules, plan=plan, pipelines=ready, only=scope)
        )
    if failures:
        raise RunFailed("\n".join(failures.values()), manifest)
    return manifest


def _run_stage(
    config: Config,
    backend: Backend,
    pipelines: list[Pipeline],
    manifest: Manifest,
    plan: bool,
    regenerate_outputs: bool,
    parameters: dict[str, dict[str, Any]] | None,
) -> dict[str, str]:
    """Run (or plan) every pipeline; for each whose run failed, a line saying why."""
    tags = {"git_commit": git_commit(config.root), "env": config.env}
    models_before = {(m["name"], m["version"]) for m in backend.models()}
    failures: dict[str, str] = {}
    for pipeline in pipelines:
        overrides = (parameters or {}).get(pipeline.name, {})
        # A step with allow_reuse=False runs every time by design: that is not a change.
        reusable = {s.name for s in pipeline.steps if s.allow_reuse}
        try:
            if plan:
                decisions = backend.plan_run(
                    pipeline, overrides, regenerate_outputs=regenerate_outputs
                )
                steps = [
                    {
                        "name": d.name,
                        "status": "WouldReuse" if d.reuses else "WouldRun",
                        "reused": bool(d.reuses),
                        "why": list(d.why),
                        # The step run it would reuse: the same key a run's reuse has.
                        **({"reused_from": d.reuses} if d.reuses else {}),
                    }
                    for d in decisions
                ]
                manifest.runs.append({"pipeline": pipeline.name, "run_id": None, "steps": steps})
                manifest.changes += sum(not s["reused"] and s["name"] in reusable for s in steps)
                continue
            result = backend.run(
                pipeline, overrides, regenerate_outputs=regenerate_outputs, tags=tags
            )
        except SpecError as exc:
            raise ConfigError(f"{config.file}: pipelines.{pipeline.name}: {exc}") from None
        manifest.runs.append(_run_entry(result, pipeline))
        manifest.changes += sum(
            not s.reused and s.name in reusable for s in result.steps if s.status == "Completed"
        )
        if result.status != "Completed":
            failures[pipeline.name] = (
                f"pipeline {pipeline.name!r} run {result.run_id}: {result.error}"
            )
    if not plan:
        manifest.models = backend.models()
        manifest.changes += len(
            {(m["name"], m["version"]) for m in manifest.models} - models_before
        )
    return failures


def _run_entry(result: RunResult, pipeline: Pipeline) -> dict[str, Any]:
    kinds = {s.name: s.kind for s in pipeline.steps}
    steps = []
    for s in result.steps:
        entry = {
            "name": s.name,
            "kind": kinds[s.name],
            "status": s.status,
            "reused": s.reused,
            "why": list(s.why),
        }
        if s.reused_from:
            entry["reused_from"] = s.reused_from
        if s.summary:
            summary = dict(s.summary)
            if "trials" in summary:  # a sweep's: parameters, metric, status, early-stopped
                entry["trials"] = summary.pop("trials")
            entry["summary"] = summary
        steps.append(entry)
    return {
        "pipeline": result.pipeline,
        "run_id": result.run_id,
        "status": result.status,
        "parameters": result.parameters,
        "folder": result.folder,
        "steps": steps,
    }


def render(manifest: Manifest) -> str:
    """The readable summary printed after a deploy."""
    lines = [
        f"{'Plan' if manifest.plan else 'Deploy'} for env {manifest.env!r} "
        f"on the {manifest.backend} backend"
    ]
    for section in ("datasets", "environments", "pipelines", "endpoints", "schedules"):
        entries = getattr(manifest, section)
        if not entries:
            continue
        lines.append(f"{section}:")
        for e in entries:
            action = (
                e["action"]
                if not manifest.plan or e["action"] == "unchanged"
                else (f"would be {e['action']}")
            )
            version = f" v{e['version']}" if e.get("version") else ""
            where = (
                e.get("url")
                or e.get("recurrence")
                or e.get("watches")
                and f"new files in {e['watches']}"
            )
            extra = f"  {where}" if where else ""
            lines.append(f"  {e['name']}{version}: {action}{extra}")
            if e.get("rest_body") and e.get("url"):
                # An endpoint invoked by POSTing a body (v2): what to send, ready to copy.
                body = json.dumps(e["rest_body"], sort_keys=True)
                lines.append(f"    POST with an Entra token for https://ml.azure.com: {body}")
    for run in manifest.runs:
        head = f"run {run['pipeline']}"
        if run.get("run_id"):
            head += f" {run['run_id']}: {run['status']}"
        lines.append(head)
        for s in run["steps"]:
            verb = "of" if s["status"] == "WouldReuse" else "reused from"
            note = f" ({verb} {s['reused_from']})" if s.get("reused_from") else ""
            lines.append(f"  {s['name']}: {s['status']}{note}")
            if not s["reused"] and s.get("why"):
                lines.append("    why: " + "; ".join(s["why"]))
            summary = s.get("summary")
            if summary:
                lines.append(
                    "    " + ", ".join(f"{k} {summary[k]}" for k in _SUMMARY_KEYS if k in summary)
                )
                if summary.get("output_file"):
                    lines.append(f"    output: {summary['output_file']}")
        if run.get("folder") and not all(s["reused"] for s in run["steps"]):
            lines.append(f"  logs and outputs: {run['folder']}")
    if manifest.models:
        lines.append("models:")
        for m in manifest.models:
            aliases = f" [{', '.join(m['aliases'])}]" if m.get("aliases") else ""
            metrics = {k[7:]: v for k, v in m.get("tags", {}).items() if k.startswith("metric.")}
            shown = ", ".join(f"{k} {v}" for k, v in metrics.items())
            lines.append(f"  {m['name']} v{m['version']}{aliases} {shown}".rstrip())
    if manifest.held_back:
        lines.append(
            "held back (their runs failed; not published, schedules left as they were): "
            + ", ".join(manifest.held_back)
        )
    verb = "would change" if manifest.plan else "changed"
    if manifest.held_back:
        done = f"{manifest.changes} changed" if manifest.changes else "nothing else changed"
        lines.append(f"deploy failed: {len(manifest.held_back)} pipeline run(s) failed; {done}")
        return "\n".join(lines)
    lines.append(
        f"{manifest.changes} {'thing' if manifest.changes == 1 else 'things'} {verb}"
        if manifest.changes
        else ("nothing would change" if manifest.plan else "nothing changed: all up to date")
    )
    return "\n".join(lines)


_SUMMARY_KEYS = ("items", "items_failed", "mini_batches", "mini_batches_failed", "items_per_s")


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write atomically: CI reads this file, and a half-written one is worse than none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(manifest.to_json(), indent=2, default=str))
    tmp.replace(path)
