"""Read the workspace coordinates Terraform left behind (``terraform output -json``)."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlops.errors import ConfigError


class TerraformNotFound(ConfigError):
    """No Terraform outputs to read (no terraform executable, or see below); callers may go on
    with config and environment variables."""


class TerraformNotInitialized(TerraformNotFound):
    """A root module ``terraform init`` never ran in: no state is attached, so it has no
    outputs yet (a fresh clone on a machine that has never deployed)."""


@dataclass(frozen=True)
class TerraformSource:
    """Where the outputs live: a root module folder, a state file, or both (state wins)."""

    dir: Path | None = None
    state: Path | None = None
    binary: str | None = None  # a terraform executable; default: TERRAFORM_BIN or PATH


def terraform_binary(explicit: str | None = None) -> str:
    """The terraform executable to call; ConfigError naming where it was looked for."""
    candidate = explicit or os.environ.get("TERRAFORM_BIN") or shutil.which("terraform")
    if not candidate or not Path(candidate).is_file():
        raise TerraformNotFound(
            "terraform was not found (set TERRAFORM_BIN or put terraform on PATH; "
            "`make tools` installs one in .venv-tools/bin)"
        )
    return candidate


def read_outputs(source: TerraformSource) -> dict[str, Any]:
    """Output name -> value, read with python-terraform; sensitive outputs are skipped."""
    from python_terraform import Terraform

    if source.dir is None and source.state is None:
        return {}
    if source.dir is not None and not source.dir.is_dir():
        raise ConfigError(f"--tf-dir {source.dir}: is not a directory")
    if source.state is not None and not source.state.is_file():
        raise ConfigError(f"--tf-state {source.state}: no such state file")
    where = str(source.state or source.dir)
    tf = Terraform(
        working_dir=str(source.dir or source.state.parent),  # type: ignore[union-attr]
        terraform_bin_path=terraform_binary(source.binary),
    )
    from python_terraform import IsFlagged

    options: dict[str, Any] = {"json": IsFlagged, "no_color": IsFlagged}
    if source.state is not None:
        options["state"] = str(source.state.resolve())
    # python-terraform logs the whole stderr at WARNING; the one line below is what people need.
    quiet = logging.getLogger("python_terraform")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)
    try:
        code, out, err = tf.output_cmd(**options)
    finally:
        quiet.setLevel(level)
    if code != 0:
        message = f"terraform output -json in {where} failed: {_first_error(err or out)}"
        never_initialized = source.dir is not None and not (source.dir / ".terraform").exists()
        if never_initialized and "initialization required" in (err or out or ""):
            raise TerraformNotInitialized(message)
        raise ConfigError(message)
    try:
        raw = json.loads(out or "{}")
    except json.JSONDecodeError as exc:
        raise ConfigError(f"terraform output -json in {where} is not JSON: {exc}") from None
    # Sensitive outputs (keys, connection strings) are never needed here and never logged.
    return {
        name: body.get("value")
        for name, body in raw.items()
        if isinstance(body, dict) and not body.get("sensitive")
    }


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _first_error(text: str) -> str:
    """Terraform's first ``Error:`` line (boxes and colours stripped), and how many follow."""
    lines = [ANSI.sub("", line).strip(" \u2502\u2577\u2575") for line in text.splitlines()]
    errors = [i for i, line in enumerate(lines) if line.startswith("Error:")]
    if not errors:
        rest = [line for line in lines if line]
        return rest[-1] if rest else "no output"
    first = lines[errors[0]]
    at = next((line for line in lines[errors[0] + 1 :] if line.startswith("on ")), None)
    where = f" ({at.rstrip(':')})" if at else ""
    more = f" and {len(errors) - 1} more errors" if len(errors) > 1 else ""
    return first + where + more
