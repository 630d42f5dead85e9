"""Typed per-environment configuration, read once from ``config/<env>.yml``.

Every error names the file and the dotted key, so a user can fix it without reading code.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlops.backends import BACKENDS as BACKEND_TABLE
from amlops.errors import ConfigError
from amlops.spec import ASSET_NAME_RE

BACKENDS = tuple(BACKEND_TABLE)
DATASET_KINDS = ("tabular", "file")
FREQUENCIES = ("Minute", "Hour", "Day", "Week", "Month")
WEEK_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
AUTH_MODES = ("auto", "cli", "service_principal", "managed_identity")


@dataclass(frozen=True)
class WorkspaceConfig:
    backend: str
    path: Path  # local workspace folder
    subscription_id: str | None = None
    resource_group: str | None = None
    name: str | None = None
    location: str | None = None
    terraform_dir: Path | None = None
    auth: str = "auto"
    port: int = 8765  # local: where `amlops serve` answers REST calls, on 127.0.0.1

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    kind: str
    description: str = ""
    source: str | None = None  # "sklearn:<name>": materialised from a bundled sample
    path: Path | None = None  # a local file or folder, relative to the repo
    datastore: str | None = None  # Azure: datastore holding the data
    datastore_path: str | None = None
    upload: bool = False  # upload the local/sample data to datastore_path first
    where: str = ""  # "config/local.yml: datasets.<name>", to prefix errors found later


@dataclass(frozen=True)
class EnvironmentConfig:
    name: str
    conda_file: Path


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    settings: Mapping[str, Any]
    parameters: Mapping[str, Any]
    where: str  # "config/local.yml: pipelines.train", for the pipeline's own errors
    file: Path = Path("config")  # the config file it comes from


@dataclass(frozen=True)
class Recurrence:
    frequency: str
    interval: int
    hours: tuple[int, ...] = ()
    minutes: tuple[int, ...] = ()
    week_days: tuple[str, ...] = ()
    time_zone: str = "UTC"
    start_time: str | None = None


@dataclass(frozen=True)
class DatastoreTrigger:
    datastore: str
    path: str | None = None  # None watches the container's top level, as v1 does
    data_path_parameter: str | None = None
    polling_interval: int = 5

    def blob_path(self, name: str = "") -> str:
        """``datastore/path/name`` (the datastore root when no path is set)."""
        return "/".join(part for part in (self.datastore, self.path, name) if part)


@dataclass(frozen=True)
class ScheduleConfig:
    name: str
    pipeline: str
    recurrence: Recurrence | None = None
    datastore_trigger: DatastoreTrigger | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    enabled: bool = True


@dataclass(frozen=True)
class Config:
    env: str
    file: Path
    root: Path
    workspace: WorkspaceConfig
    compute: str
    datasets: tuple[DatasetConfig, ...]
    environments: tuple[EnvironmentConfig, ...]
    pipelines: tuple[PipelineConfig, ...]
    schedules: tuple[ScheduleConfig, ...]

    def pipeline(self, name: str) -> PipelineConfig:
        for p in self.pipelines:
            if p.name == name:
                return p
        raise ConfigError(f"{self.file}: pipelines.{name} is not configured")


class _Reader:
    """Walks the YAML document, turning every type or value error into a ConfigError."""

    def __init__(self, file: Path, prefix: str | None = None):
        self.file = file
        self.prefix = f"{file}: " if prefix is None else prefix  # what precedes a key

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.prefix}{key}: {message}")

    def mapping(self, value: object, key: str, *, required: bool = True) -> Mapping[str, Any]:
        if value is None and not required:
            return {}
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be a mapping, got {_type_name(value)}")
        return value

    def known(self, data: Mapping[str, Any], key: str, allowed: set[str]) -> None:
        unknown = sorted(set(data) - allowed)
        if unknown:
            where = _join(key, unknown[0])
            raise self.fail(where, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def str_(self, data: Mapping[str, Any], key: str, name: str, default: Any = ...) -> Any:
        value = data.get(name, default)
        if value is ...:
            raise self.fail(_join(key, name), "is required")
        if value is not None and value is not default and not isinstance(value, str):
            raise self.fail(_join(key, name), f"must be a string, got {_type_name(value)}")
        return value

    def int_(self, data: Mapping[str, Any], key: str, name: str, default: int, low: int) -> int:
        value = data.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise self.fail(_join(key, name), f"must be an integer >= {low}, got {value!r}")
        return value

    def bool_(self, data: Mapping[str, Any], key: str, name: str, default: bool) -> bool:
        value = data.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(_join(key, name), f"must be true or false, got {value!r}")
        return value

    def choice(self, data: Mapping[str, Any], key: str, name: str, choices, default=...) -> str:
        value = self.str_(data, key, name, default)
        if value not in choices:
            raise self.fail(_join(key, name), f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    def asset_name(self, name: object, key: str) -> str:
        if not isinstance(name, str) or not ASSET_NAME_RE.match(name):
            raise self.fail(key, f"name {name!r} must match {ASSET_NAME_RE.pattern}")
        return name

    def repo_path(self, root: Path, value: str, key: str, *, must_exist: bool = True) -> Path:
        path = (root / value).resolve()
        if must_exist and not path.exists():
            raise self.fail(key, f"{value!r} does not exist (paths are relative to {root})")
        return path


class SettingsReader:
    """Reads one ``pipelines.<name>`` block for its pipeline module's ``build()``, with the
    checks and messages of the rest of the config file (unknown keys list the allowed ones)."""

    def __init__(self, cfg: PipelineConfig):
        self.cfg = cfg
        self._r = _Reader(cfg.file, prefix=f"{cfg.where}.")

    def fail(self, key: str, message: str) -> ConfigError:
        return self._r.fail(key, message)

    def allow(self, keys: Iterable[str]) -> None:
        self._r.known(self.cfg.settings, "", set(keys))

    def string(self, name: str, default: str | None = None, *, required: bool = True) -> str:
        value = self._r.str_(self.cfg.settings, "", name, ... if required else default)
        if required and not value:
            raise self.fail(name, "is required (a non-empty string)")
        return value

    def choice(self, name: str, choices: Sequence[str], default: Any = ...) -> str:
        return self._r.choice(self.cfg.settings, "", name, choices, default)

    def section(self, name: str) -> SettingsReader | None:
        """An optional nested block (``sweep:``) read with the same checks, its keys prefixed."""
        value = self.cfg.settings.get(name)
        if value is None:
            return None
        body = self._r.mapping(value, name)
        return SettingsReader(
            PipelineConfig(self.cfg.name, body, {}, f"{self.cfg.where}.{name}", self.cfg.file)
        )

    def has(self, name: str) -> bool:
        return self.cfg.settings.get(name) is not None

    def get(self, name: str, default: Any = None) -> Any:
        return self.cfg.settings.get(name, default)

    def keys(self) -> list[str]:
        return list(self.cfg.settings)

    def integer(self, name: str, default: Any = ..., *, low: int = 0) -> Any:
        value = self.cfg.settings.get(name, default)
        if value is ...:
            raise self.fail(name, "is required")
        if value is not None and value is not default:
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise self.fail(name, f"must be an integer >= {low}, got {value!r}")
        return value

    def number(self, name: str, default: Any = None) -> Any:
        value = self.cfg.settings.get(name, default)
        if value is not None and value is not default:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise self.fail(name, f"must be a number, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        return self._r.bool_(self.cfg.settings, "", name, default)

    def strings(self, name: str) -> tuple[str, ...]:
        value = self.cfg.settings.get(name, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(name, f"must be a list of strings, got {value!r}")
        return tuple(value)

    def parameters(self, defaults: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults overridden by config: known names only, each of its default's type."""
        values = dict(defaults)
        for name, value in self.cfg.parameters.items():
            key = f"parameters.{name}"
            if name not in defaults:
                known = ", ".join(defaults)
                raise self.fail(key, f"not a {self.cfg.name} parameter (known: {known})")
            want = type(defaults[name])
            if want is float and type(value) is int:
                value = float(value)
            if type(value) is not want:
                raise self.fail(key, f"must be {want.__name__}, got {value!r}")
            values[name] = value
        return values


def load_config(env: str, root: Path, config_dir: Path | None = None) -> Config:
    """Read and validate ``config/<env>.yml``; raise ConfigError naming file and key."""
    import yaml

    if not re.fullmatch(r"[A-Za-z0-9_-]+", env):
        raise ConfigError(f"--env {env!r}: use letters, digits, '-' or '_'")
    config_dir = config_dir or root / "config"
    file = config_dir / f"{env}.yml"
    if not file.is_file():
        available = sorted(p.stem for p in config_dir.glob("*.yml"))
        raise ConfigError(
            f"--env {env!r}: {file} does not exist (available: {', '.join(available) or 'none'})"
        )
    try:
        raw = yaml.safe_load(file.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{file}:{where} is not valid YAML: {exc.problem}") from None
    r = _Reader(file)
    doc = r.mapping(raw, "(top level)")
    r.known(
        doc,
        "",
        {"workspace", "compute", "datasets", "environments", "pipelines", "schedules"},
    )
    workspace = _workspace(r, root, r.mapping(doc.get("workspace"), "workspace", required=False))
    compute_doc = r.mapping(doc.get("compute"), "compute", required=False)
    r.known(compute_doc, "compute", {"default"})
    compute = r.str_(compute_doc, "compute", "default", "cpu-cluster")
    datasets = tuple(
        _dataset(r, root, name, r.mapping(body, f"datasets.{name}"))
        for name, body in r.mapping(doc.get("datasets"), "datasets", required=False).items()
    )
    environments = tuple(
        _environment(r, root, name, r.mapping(body, f"environments.{name}"))
        for name, body in r.mapping(doc.get("environments"), "environments", required=False).items()
    )
    pipelines = tuple(
        _pipeline(r, name, r.mapping(body, f"pipelines.{name}"))
        for name, body in r.mapping(doc.get("pipelines"), "pipelines", required=False).items()
    )
    pipeline_names = {p.name for p in pipelines}
    schedules = tuple(
        _schedule(r, name, r.mapping(body, f"schedules.{name}"), pipeline_names)
        for name, body in r.mapping(doc.get("schedules"), "schedules", required=False).items()
    )
    return Config(
        env=env,
        file=file,
        root=root,
        workspace=workspace,
        compute=compute,
        datasets=datasets,
        environments=environments,
        pipelines=pipelines,
        schedules=schedules,
    )


def _workspace(r: _Reader, root: Path, doc: Mapping[str, Any]) -> WorkspaceConfig:
    key = "workspace"
    r.known(
        doc,
        key,
        {
            "backend",
            "path",
            "subscription_id",
            "resource_group",
            "name",
            "location",
            "terraform_dir",
            "auth",
            "port",
        },
    )
    backend = r.choice(doc, key, "backend", BACKENDS, "local")
    path = r.repo_path(root, r.str_(doc, key, "path", ".amlops"), f"{key}.path", must_exist=False)
    terraform_dir = r.str_(doc, key, "terraform_dir", None)
    port = r.int_(doc, key, "port", 8765, 1)
    if port > 65535:
        raise r.fail(f"{key}.port", f"must be a TCP port from 1 to 65535, got {port}")
    return WorkspaceConfig(
        backend=backend,
        path=path,
        subscription_id=r.str_(doc, key, "subscription_id", None),
        resource_group=r.str_(doc, key, "resource_group", None),
        name=r.str_(doc, key, "name", None),
        location=r.str_(doc, key, "location", None),
        terraform_dir=(
            r.repo_path(root, terraform_dir, f"{key}.terraform_dir") if terraform_dir else None
        ),
        auth=r.choice(doc, key, "auth", AUTH_MODES, "auto"),
        port=port,
    )


def _dataset(r: _Reader, root: Path, name: str, doc: Mapping[str, Any]) -> DatasetConfig:
    key = f"datasets.{name}"
    r.asset_name(name, key)
    r.known(
        doc, key, {"kind", "description", "source", "path", "datastore", "datastore_path", "upload"}
    )
    source = r.str_(doc, key, "source", None)
    path = r.str_(doc, key, "path", None)
    if source is not None and path is not None:
        raise r.fail(key, "give either source or path, not both")
    if source is not None and not re.fullmatch(r"sklearn:[a-z_]+(-scoring)?", source):
        raise r.fail(f"{key}.source", f"{source!r} is not a known sample (sklearn:<name>)")
    datastore = r.str_(doc, key, "datastore", None)
    if source is None and path is None and datastore is None:
        raise r.fail(key, "needs a source, a path or a datastore")
    return DatasetConfig(
        name=name,
        kind=r.choice(doc, key, "kind", DATASET_KINDS),
        description=r.str_(doc, key, "description", ""),
        source=source,
        path=r.repo_path(root, path, f"{key}.path") if path else None,
        datastore=datastore,
        datastore_path=r.str_(doc, key, "datastore_path", None),
        upload=r.bool_(doc, key, "upload", False),
        where=f"{r.file}: {key}",
    )


def _environment(r: _Reader, root: Path, name: str, doc: Mapping[str, Any]) -> EnvironmentConfig:
    key = f"environments.{name}"
    r.asset_name(name, key)
    r.known(doc, key, {"conda_file"})
    conda_file = r.repo_path(root, r.str_(doc, key, "conda_file"), f"{key}.conda_file")
    if not conda_file.is_file():
        raise r.fail(f"{key}.conda_file", f"{conda_file} is not a file")
    return EnvironmentConfig(name=name, conda_file=conda_file)


def _pipeline(r: _Reader, name: str, doc: Mapping[str, Any]) -> PipelineConfig:
    key = f"pipelines.{name}"
    r.asset_name(name, key)
    settings = {k: v for k, v in doc.items() if k != "parameters"}
    parameters = r.mapping(doc.get("parameters"), f"{key}.parameters", required=False)
    for pname, value in parameters.items():
        if not isinstance(value, bool | int | float | str):
            raise r.fail(
                f"{key}.parameters.{pname}",
                f"must be a number, string or boolean, got {_type_name(value)}",
            )
    return PipelineConfig(
        name=name,
        settings=settings,
        parameters=dict(parameters),
        where=f"{r.file}: {key}",
        file=r.file,
    )


def _schedule(r: _Reader, name: str, doc: Mapping[str, Any], pipelines: set[str]) -> ScheduleConfig:
    key = f"schedules.{name}"
    r.asset_name(name, key)
    r.known(
        doc,
        key,
        {"pipeline", "recurrence", "datastore_trigger", "parameters", "description", "enabled"},
    )
    pipeline = r.str_(doc, key, "pipeline")
    if pipeline not in pipelines:
        raise r.fail(f"{key}.pipeline", f"{pipeline!r} is not under pipelines")
    has_rec, has_trig = "recurrence" in doc, "datastore_trigger" in doc
    if has_rec == has_trig:
        raise r.fail(key, "needs exactly one of recurrence or datastore_trigger")
    recurrence = trigger = None
    if has_rec:
        rk = f"{key}.recurrence"
        rd = r.mapping(doc["recurrence"], rk)
        r.known(
            rd,
            rk,
            {"frequency", "interval", "hours", "minutes", "week_days", "time_zone", "start_time"},
        )
        frequency = r.choice(rd, rk, "frequency", FREQUENCIES)
        hours = _int_list(r, rd, rk, "hours", 0, 23)
        minutes = _int_list(r, rd, rk, "minutes", 0, 59)
        week_days = tuple(rd.get("week_days") or ())
        for day in week_days:
            if day not in WEEK_DAYS:
                raise r.fail(f"{rk}.week_days", f"{day!r} is not one of {', '.join(WEEK_DAYS)}")
        if (hours or minutes) and frequency not in ("Day", "Week"):
            raise r.fail(rk, "hours and minutes need frequency Day or Week (as in Azure ML)")
        if week_days and frequency != "Week":
            raise r.fail(rk, "week_days needs frequency Week (as in Azure ML)")
        start_time = r.str_(rd, rk, "start_time", None)
        if start_time is not None and not _is_local_time(start_time):
            raise r.fail(f"{rk}.start_time", f"{start_time!r} is not a time YYYY-MM-DDTHH:MM[:SS]")
        time_zone = r.str_(rd, rk, "time_zone", "UTC")
        # Found now, not by the schedule stage after every pipeline has run.
        from amlops.recurrence import zone

        try:
            zone(time_zone)
        except ValueError as exc:
            raise r.fail(f"{rk}.time_zone", str(exc)) from None
        recurrence = Recurrence(
            frequency=frequency,
            interval=r.int_(rd, rk, "interval", 1, 1),
            hours=hours,
            minutes=minutes,
            week_days=week_days,
            time_zone=time_zone,
            start_time=start_time,
        )
    else:
        tk = f"{key}.datastore_trigger"
        td = r.mapping(doc["datastore_trigger"], tk)
        r.known(td, tk, {"datastore", "path", "data_path_parameter", "polling_interval"})
        trigger = DatastoreTrigger(
            datastore=r.str_(td, tk, "datastore"),
            path=r.str_(td, tk, "path", None) or None,
            data_path_parameter=r.str_(td, tk, "data_path_parameter", None),
            polling_interval=r.int_(td, tk, "polling_interval", 5, 1),
        )
    parameters = r.mapping(doc.get("parameters"), f"{key}.parameters", required=False)
    return ScheduleConfig(
        name=name,
        pipeline=pipeline,
        recurrence=recurrence,
        datastore_trigger=trigger,
        parameters=dict(parameters),
        description=r.str_(doc, key, "description", ""),
        enabled=r.bool_(doc, key, "enabled", True),
    )


def _int_list(
    r: _Reader, doc: Mapping[str, Any], key: str, name: str, low: int, high: int
) -> tuple[int, ...]:
    values = doc.get(name) or []
    if not isinstance(values, list):
        raise r.fail(f"{key}.{name}", "must be a list of integers")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
            raise r.fail(f"{key}.{name}", f"{v!r} is not an integer from {low} to {high}")
    return tuple(values)


def _type_name(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _is_local_time(text: str) -> bool:
    """YYYY-MM-DDTHH:MM[:SS] naming a real date and time (no offset: the zone is separate)."""
    from datetime import datetime

    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?", text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True
