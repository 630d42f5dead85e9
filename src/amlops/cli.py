"""Command line: ``amlops deploy`` (as scripts/deploy.py) and inspection of the local workspace.

Kept light on purpose: nothing heavy (mlflow, pandas, azureml) is imported before a command
needs it, so ``amlops runs list`` answers at once.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlops.backends import add_backend_options
from amlops.backends.base import STAGES
from amlops.errors import AmlopsError, ConfigError, RunFailed
from amlops.spec import SpecError

if TYPE_CHECKING:
    from amlops.config import Config
    from amlops.spec import Pipeline

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors are one line and exit 2 like every other bad input."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(f"{self.prog}: {message}")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="local", help="config/<env>.yml to use (default local)")
    parser.add_argument(
        "--root",
        type=Path,
        default=None,
        help="repository root holding config/ and pipelines/ (default: the current folder)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")


def _version() -> str:
    from importlib.metadata import version

    return f"amlops {version('amlops')}"


def deploy_parser(prog: str = "deploy.py") -> argparse.ArgumentParser:
    parser = _Parser(
        prog=prog,
        description="Register datasets and environments, build, run, publish and schedule "
        "the pipelines of one environment. Idempotent; --plan changes nothing.",
    )
    parser.add_argument("--version", action="version", version=_version())
    _add_common(parser)
    parser.add_argument(
        "--pipeline",
        action="append",
        default=[],
        metavar="NAME",
        help="build, run and publish only this pipeline (repeatable); the schedule stage then "
        "touches only its schedules. Datasets and environments are registered as usual",
    )
    parser.add_argument(
        "--stage",
        default="all",
        choices=[*STAGES, "all"],
        help="one stage, or all stages the backend has (default all)",
    )
    parser.add_argument("--plan", action="store_true", help="say what would change; change nothing")
    parser.add_argument(
        "--regenerate-outputs",
        action="store_true",
        help="run every step even when an earlier run could be reused",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="PIPELINE.NAME=VALUE",
        help="override a pipeline parameter for this run, e.g. train.n_estimators=300",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        default=None,
        help="where to write the manifest (default <workspace>/manifests/<env>.json)",
    )
    add_backend_options(parser)
    return parser


def _parse_params(items: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        pipeline, dot, name = key.partition(".")
        if not sep or not dot or not pipeline or not name:
            raise ConfigError(f"--param {item!r}: use PIPELINE.NAME=VALUE, e.g. train.seed=7")
        out.setdefault(pipeline, {})[name] = value
    return out


def compile_offline(config: Config, pipelines: Sequence[Pipeline]) -> None:
    """Compile what a deploy submits as ``amlops export`` does, through the SDK's own offline
    graph building, and throw it away: a pipeline the backend cannot express stops the deploy
    here, before register has changed anything in the workspace."""
    from amlops.backends import BACKENDS

    entry = BACKENDS[config.workspace.backend]
    if entry.exporter is None:  # the local backend submits nowhere; its checks ran above
        return
    with tempfile.TemporaryDirectory(prefix="amlops-compile-") as scratch:
        entry.export(config, pipelines, Path(scratch))


def run_deploy(args: argparse.Namespace) -> int:
    from amlops.backends import backend_class, backend_options, open_backend
    from amlops.backends.base import check_step_kinds
    from amlops.config import load_config
    from amlops.deploy import build_pipelines, deploy, render, resolve_stages, write_manifest

    root = (args.root or Path.cwd()).resolve()
    config = load_config(args.env, root)
    parameters = _parse_params(args.param)
    configured = [p.name for p in config.pipelines]
    for name in args.pipeline:
        if name not in configured:
            raise ConfigError(
                f"--pipeline {name}: no pipeline {name!r} in {config.file} "
                f"(pipelines: {', '.join(configured) or 'none'})"
            )
    only = set(args.pipeline) or None
    if only is not None:
        config = replace(config, pipelines=tuple(p for p in config.pipelines if p.name in only))
    unknown = sorted(set(parameters) - {p.name for p in config.pipelines})
    if unknown:
        where = "--pipeline" if unknown[0] in configured else str(config.file)
        raise ConfigError(f"--param {unknown[0]}.*: no pipeline {unknown[0]!r} in {where}")
    options = backend_options(config, args)
    cls = backend_class(config)
    stages = resolve_stages(args.stage, cls.stages, cls.name)
    # Every input is checked before the backend opens: a bad one must leave nothing behind.
    pipelines = build_pipelines(config)
    check_step_kinds(cls, pipelines)
    if {"build", "publish"} & set(stages):
        compile_offline(config, pipelines)
    for pipeline in pipelines:
        try:
            pipeline.resolve_parameters(parameters.get(pipeline.name))
        except SpecError as exc:
            raise ConfigError(f"--param: {exc}") from None
    backend = open_backend(config, plan=args.plan, pipelines=pipelines, options=options)
    started = time.time()
    failure: RunFailed | None = None
    try:
        manifest = deploy(
            config,
            backend,
            pipelines,
            stages,
            plan=args.plan,
            regenerate_outputs=args.regenerate_outputs,
            parameters=parameters,
            only=only,
        )
    except RunFailed as exc:
        failure, manifest = exc, exc.manifest
    finally:
        backend.close()
    if not args.plan:
        path = args.manifest or config.workspace.path / "manifests" / f"{config.env}.json"
        write_manifest(manifest, path)
    if args.json:
        print(json.dumps(manifest.to_json(), indent=2, default=str))
    else:
        print(render(manifest))
        print(f"({time.time() - started:.1f} s)", file=sys.stderr)
    if failure is not None:
        raise failure
    return 0


# --- inspection ---------------------------------------------------------------------------------


def inspect_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="amlops", description="Azure ML pipelines as code: inspect and deploy.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("deploy", help="same as scripts/deploy.py", add_help=False)
    nouns = ("runs", "datasets", "environments", "models", "pipelines", "endpoints", "schedules")
    for noun in nouns:
        p = sub.add_parser(noun, help=f"list or show {noun}")
        verbs = p.add_subparsers(dest="verb", required=True, parser_class=_Parser)
        ls = verbs.add_parser("list", help=f"list {noun}")
        _add_common(ls)
        if noun == "runs":
            ls.add_argument("--pipeline", default=None)
            ls.add_argument("--limit", type=int, default=20)
        show = verbs.add_parser("show", help=f"show one of the {noun}")
        _add_common(show)
        show.add_argument("name", help="run id" if noun == "runs" else "name")
        if noun not in ("runs", "endpoints", "schedules"):
            show.add_argument("--version", default=None)
        if noun == "runs":
            logs = verbs.add_parser("logs", help="print a run's step logs (stdout and stderr)")
            _add_common(logs)
            logs.add_argument("name", help="run id")
            logs.add_argument("step", nargs="?", default=None, help="one step (default: all)")
            logs.add_argument(
                "--follow", "-f", action="store_true", help="keep printing until the run ends"
            )
    serve = sub.add_parser(
        "serve", help="serve the published endpoints over REST and fire the schedules"
    )
    _add_common(serve)
    serve.add_argument("--port", type=int, default=None, help="default: workspace.port (8765)")
    serve.add_argument(
        "--poll-seconds",
        type=float,
        default=None,
        help="check datastore triggers this often (default: each trigger's polling_interval, "
        "in minutes, as on Azure ML)",
    )
    serve.add_argument(
        "--no-schedules", action="store_true", help="serve REST only; fire no schedules"
    )
    serve.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=None,
        help="runs executing side by side (default: one per core); their steps together "
        "still start no more processes than there are cores",
    )
    token = sub.add_parser(
        "token", help="print the token amlops serve asks REST callers for (Bearer <token>)"
    )
    _add_common(token)
    export = sub.add_parser(
        "export",
        help="write, offline, what a deploy would submit (v1: a JSON graph per pipeline; "
        "v2: YAML for az ml)",
    )
    _add_common(export)
    export.add_argument(
        "--backend",
        default=None,
        help="the backend to compile for (default: the env's own, or azureml_v1 for local)",
    )
    export.add_argument("dir", type=Path, help="folder to write the export into")
    ui = sub.add_parser("mlflow-ui", help="open the MLflow UI on the local workspace")
    _add_common(ui)
    ui.add_argument("--port", type=int, default=5000)
    ui.add_argument("--host", default="127.0.0.1")
    return parser


def _local_config(args: argparse.Namespace):
    from amlops.config import load_config

    config = load_config(args.env, (args.root or Path.cwd()).resolve())
    if config.workspace.backend != "local":
        raise ConfigError(f"--env {args.env}: works on local workspaces only")
    if not (config.workspace.path / "metadata.db").exists():
        raise ConfigError(f"no local workspace at {config.workspace.path}: run 'make deploy' first")
    return config


def _workspace(args: argparse.Namespace):
    from amlops.backends.local.queries import WorkspaceReader

    config = _local_config(args)
    return WorkspaceReader.open(config.workspace.path, config.workspace.service_url)


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _ignore(signum: int, frame: Any) -> None:
    pass


def run_serve(args: argparse.Namespace) -> int:
    from amlops.backends.local.rest import RestServer
    from amlops.backends.local.service import LocalService

    config = _local_config(args)
    port = config.workspace.port if args.port is None else args.port
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be a TCP port from 0 (any free one) to 65535")
    if args.poll_seconds is not None and args.poll_seconds <= 0:
        raise ConfigError(f"--poll-seconds {args.poll_seconds}: must be more than 0")
    if args.max_concurrent_runs is not None and args.max_concurrent_runs < 1:
        raise ConfigError(f"--max-concurrent-runs {args.max_concurrent_runs}: must be at least 1")
    service = LocalService(
        config.workspace.path,
        poll_seconds=args.poll_seconds,
        max_concurrent_runs=args.max_concurrent_runs,
    )
    try:
        server = RestServer(service, port)
    except OSError as exc:
        reason = exc.strerror or exc
        raise ConfigError(f"--port {port}: cannot listen on 127.0.0.1:{port}: {reason}") from None
    service.start(schedules=not args.no_schedules)
    # The first line says where: a caller that asked for port 0 learns the real one here.
    print(f"serving {config.workspace.path} on {server.url} (Ctrl-C to stop)", flush=True)
    print(f"web page: {server.page_url}", flush=True)
    print(
        f"{service.max_concurrent_runs} runs at a time; REST callers send "
        "'Authorization: Bearer <token>' (amlops token prints it)",
        file=sys.stderr,
        flush=True,
    )
    # SIGTERM (a supervisor, `kill`) stops as cleanly as Ctrl-C; SIGINT is set explicitly
    # because a shell starting us in the background may have told us to ignore it.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopping: canceling the runs in progress; queued runs resume at the next start",
              file=sys.stderr)  # fmt: skip
    finally:
        # A second signal (make and a terminal both pass Ctrl-C on) must not cut the
        # cancellation short and leave a run recorded as Running. A handler that does
        # nothing, not SIG_IGN: step processes would inherit an ignored SIGTERM and never stop.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, _ignore)
        server.server_close()
        service.stop()
    return 0


def run_token(args: argparse.Namespace) -> int:
    from amlops.backends.local.token import ensure_token

    config = _local_config(args)
    token = ensure_token(config.workspace.path)  # a workspace made before tokens gets one now
    print(json.dumps({"token": token}) if args.json else token)
    return 0


def run_export(args: argparse.Namespace) -> int:
    from amlops.backends import BACKENDS
    from amlops.config import load_config
    from amlops.deploy import build_pipelines

    config = load_config(args.env, (args.root or Path.cwd()).resolve())
    name = args.backend or (
        config.workspace.backend if BACKENDS[config.workspace.backend].exporter else "azureml_v1"
    )
    if name not in BACKENDS:
        raise ConfigError(f"--backend {name}: not a backend ({', '.join(BACKENDS)})")
    written = BACKENDS[name].export(config, build_pipelines(config), args.dir)
    if args.json:
        print(json.dumps([str(p) for p in written], indent=2))
    else:
        for path in written:
            print(path)
    return 0


def run_inspect(args: argparse.Namespace) -> int:
    from amlops.backends.local import queries
    from amlops.telemetry import telemetry_off

    if args.command == "serve":
        return run_serve(args)
    if args.command == "export":
        return run_export(args)
    if args.command == "token":
        return run_token(args)
    reader = _workspace(args)
    try:
        if args.command == "runs" and args.verb == "logs":
            return queries.print_logs(reader, args.name, args.step, follow=args.follow)
        if args.command == "mlflow-ui":
            argv = queries.mlflow_ui_command(reader, args.host, args.port)
            telemetry_off(os.environ)  # the UI, exec'd below, reads it
            print(f"MLflow UI on http://{args.host}:{args.port} (Ctrl-C to stop)", file=sys.stderr)
            os.execv(argv[0], argv)
        rows = reader.query(args.command, args.verb, args)
    finally:
        reader.close()
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(queries.render(args.command, args.verb, rows))
    return 0


def _run(argv: Sequence[str], entry) -> int:
    debug = "--debug" in argv
    try:
        return entry(argv)
    except AmlopsError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`amlops runs list | head -1`): say nothing more, and keep
        # Python's exit-time flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def deploy_main(argv: Sequence[str] | None = None, prog: str = "deploy.py") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return _run(argv, lambda a: run_deploy(deploy_parser(prog).parse_args(a)))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["deploy"]:
        return deploy_main(argv[1:], prog="amlops deploy")
    return _run(argv, lambda a: run_inspect(inspect_parser().parse_args(a)))


if __name__ == "__main__":
    sys.exit(main())
