"""The decisions every backend makes the same way, as pure functions over plain data.

A backend reads what its workspace holds, asks here what to do, and applies the answer with
its own primitives (insert a row, call the SDK). ``--plan`` is "decide, then don't apply".

- Assets (datasets, environments, local pipeline versions): a new version only when the
  content digest differs from the latest version's.
- Publishing: an endpoint is created at version "0"; a pipeline whose fingerprint equals the
  default version's is unchanged; one that matches an earlier version (a revert) moves the
  default back to it; anything else is a new version, which becomes the default.
- Schedules, reconciled by name. The names in config belong to config: every schedule with a
  configured name is reconciled (one kept and updated in place, others of that name
  disabled). A schedule with any other name is disabled only if amlops manages it (it
  carries amlops' fingerprint); schedules someone made by hand are left alone. What a backend
  cannot change in place (its ``cannot_update``) is replaced: disabled, and a new one created.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from amlops.backends.base import CREATED, DISABLED, UNCHANGED, UPDATED, Change
from amlops.config import ScheduleConfig

FIRST_ENDPOINT_VERSION = "0"


def decide_version(kind: str, name: str, digest: str, latest: tuple[int, str] | None) -> Change:
    """The same digest as the latest (version, digest) is unchanged; anything else is next."""
    if latest is not None and latest[1] == digest:
        return Change(kind, name, UNCHANGED, str(latest[0]))
    version = 1 if latest is None else int(latest[0]) + 1
    action = CREATED if latest is None else UPDATED
    return Change(kind, name, action, str(version), {"digest": digest[:12]})


def decide_publish(
    name: str,
    fingerprint: str,
    versions: Mapping[str, str] | None,
    default: str | None,
    detail: Mapping[str, Any] | None = None,
) -> Change:
    """What publishing ``fingerprint`` does to endpoint ``name``.

    ``versions`` maps each published version ("0", "1", ...) to its fingerprint, None when
    the endpoint does not exist. The change's version is the default after publishing;
    ``detail["reverts"]`` says the default moves back to an earlier version.
    """
    base = {**(detail or {}), "fingerprint": fingerprint}
    if versions is None:
        return Change("endpoint", name, CREATED, FIRST_ENDPOINT_VERSION, base)
    if default is not None and versions.get(default) == fingerprint:
        return Change("endpoint", name, UNCHANGED, default, base)
    earlier = [v for v, fp in versions.items() if fp == fingerprint]
    if earlier:
        return Change("endpoint", name, UPDATED, max(earlier, key=int), {**base, "reverts": True})
    next_version = str(max((int(v) for v in versions), default=-1) + 1)
    return Change("endpoint", name, UPDATED, next_version, base)


# --- schedules -------------------------------------------------------------------------------

ACTIVE = "Active"
RECURRENCE, DATASTORE = "recurrence", "datastore"


@dataclass(frozen=True)
class ExistingSchedule:
    """A schedule in the workspace, as the reconciler needs to see it."""

    id: str
    name: str
    target: str | None  # what it runs: the endpoint (name locally, id on Azure)
    kind: str  # recurrence | datastore
    active: bool
    fingerprint: str | None  # None: not made by amlops
    handle: Any = None  # the backend's own object or row, for applying the action

    @property
    def managed(self) -> bool:
        return self.fingerprint is not None


@dataclass(frozen=True)
class ScheduleAction:
    """One thing to do: create, update (in place), disable, or leave a schedule as it is."""

    action: str  # created | updated | disabled | unchanged
    name: str
    desired: ScheduleConfig | None = None  # None when disabling a schedule gone from config
    existing: ExistingSchedule | None = None
    fingerprint: str | None = None
    reason: str | None = None  # why a schedule is disabled


def schedule_kind(sc: ScheduleConfig) -> str:
    return RECURRENCE if sc.recurrence is not None else DATASTORE


def plan_schedules(
    desired: Sequence[ScheduleConfig],
    existing: Sequence[ExistingSchedule],
    *,
    target: Callable[[ScheduleConfig], str | None],
    fingerprint: Callable[[ScheduleConfig], str],
    cannot_update: Callable[[ExistingSchedule, ScheduleConfig], str | None] | None = None,
    in_scope: Callable[[ExistingSchedule], bool] | None = None,
) -> list[ScheduleAction]:
    """Actions that leave one active schedule per configured name, matching config.

    ``in_scope``: the existing schedules this reconcile may touch (a deploy of some of the
    pipelines leaves the others' schedules alone); a configured name is always in scope.

    Only a schedule on the same target and of the same kind is updated in place: v1 cannot
    retarget a schedule or switch recurrence <-> data change, so others are replaced. Nor is
    one for which ``cannot_update(existing, desired)`` gives a reason (None: it can be).
    """
    names = {sc.name for sc in desired}
    if in_scope is not None:
        existing = [s for s in existing if s.name in names or in_scope(s)]
    actions: list[ScheduleAction] = []
    for sc in desired:
        wanted_target = target(sc)
        same_name = [s for s in existing if s.name == sc.name]
        usable = [
            s
            for s in same_name
            if wanted_target is not None
            and s.target == wanted_target
            and s.kind == schedule_kind(sc)
        ]
        # `enabled: false` changes only the status (the definition waits for re-enabling),
        # which every backend can set in place; only applying a definition can be blocked.
        blocked: dict[str, str] = {}
        if sc.enabled and cannot_update is not None:
            blocked = {s.id: why for s in usable if (why := cannot_update(s, sc))}
        updatable = [s for s in usable if s.id not in blocked]
        updatable.sort(key=lambda s: not s.active)  # prefer an active one; order kept otherwise
        keep = updatable[0] if updatable else None
        for s in same_name:
            if s is not keep and s.active:
                if s in updatable:
                    why = "duplicate name"
                elif s.id in blocked:
                    why = f"replaced: {blocked[s.id]}"
                else:
                    why = "replaced"
                actions.append(ScheduleAction(DISABLED, s.name, existing=s, reason=why))
        if not sc.enabled:
            # Left as it is apart from its status: the definition is applied when re-enabled.
            if keep is not None and keep.active:
                actions.append(
                    ScheduleAction(DISABLED, sc.name, sc, keep, reason="enabled: false in config")
                )
            else:
                actions.append(ScheduleAction(UNCHANGED, sc.name, sc, keep))
            continue
        fp = fingerprint(sc)
        if keep is not None and keep.active and keep.fingerprint == fp:
            actions.append(ScheduleAction(UNCHANGED, sc.name, sc, keep, fp))
        else:
            action = CREATED if keep is None else UPDATED
            actions.append(ScheduleAction(action, sc.name, sc, keep, fp))
    configured = {sc.name for sc in desired}
    for s in existing:
        if s.name not in configured and s.active and s.managed:
            actions.append(
                ScheduleAction(DISABLED, s.name, existing=s, reason="removed from config")
            )
    return actions
