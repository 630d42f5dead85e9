"""MLflow's usage telemetry, off wherever amlops starts MLflow, unless the user turns it on.

MLflow 3 sends usage events and writes an installation id by default; amlops promises to work
offline and send nothing. ``MLFLOW_DISABLE_TELEMETRY=false`` in the environment turns it on.
"""

from __future__ import annotations

from collections.abc import MutableMapping

SWITCH = "MLFLOW_DISABLE_TELEMETRY"


def telemetry_off(environ: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """``environ`` with telemetry off, unless it already says otherwise."""
    environ.setdefault(SWITCH, "true")
    return environ
