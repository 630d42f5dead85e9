"""Counting what happened, deciding whether the step's error bounds hold, and saying so."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Bounds:
    """AML's three failure bounds; -1 (or 100 percent) ignores one."""

    error_threshold: int = 10
    allowed_failed_count: int | None = None
    allowed_failed_percent: float | None = None

    def crossed(self, t: Tally, final: bool) -> str | None:
        """The first bound the tally is over, as a sentence; None while all hold."""
        if self.error_threshold != -1 and t.items_failed > self.error_threshold:
            return f"error_threshold={self.error_threshold} crossed: {t.items_failed} items failed"
        count = self.allowed_failed_count
        if count is not None and count != -1 and t.mini_batches_failed > count:
            return (
                f"allowed_failed_count={count} crossed: {t.mini_batches_failed} mini-batches failed"
            )
        pct = self.allowed_failed_percent
        # The percentage needs the final number of mini-batches, so it is judged at the end.
        if final and pct is not None and pct < 100 and t.mini_batches:
            failed_pct = 100.0 * t.mini_batches_failed / t.mini_batches
            if failed_pct > pct:
                return (
                    f"allowed_failed_percent={pct:g} crossed: {t.mini_batches_failed} of "
                    f"{t.mini_batches} mini-batches failed ({failed_pct:.1f}%)"
                )
        return None


@dataclass
class Tally:
    items: int = 0
    items_failed: int = 0
    items_returned: int = 0
    mini_batches: int = 0
    mini_batches_failed: int = 0
    retried_ids: set[int] = field(default_factory=set)
    retries: int = 0
    worker_restarts: int = 0
    started: float = field(default_factory=time.monotonic)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def items_per_s(self) -> float:
        elapsed = self.elapsed()
        return self.items / elapsed if elapsed > 0 else 0.0


class Progress:
    """A line on stderr at most every ``every`` seconds: mini-batches done/total and items/s.

    A line that says nothing new (workers still loading a model) waits ``unchanged_every``
    seconds: often enough to show the step is alive, not so often it buries the log.
    """

    def __init__(self, total_estimate: int, every: float = 1.0, unchanged_every: float = 15.0):
        self.total = total_estimate
        self.every = every
        self.unchanged_every = unchanged_every
        self.last = time.monotonic()
        self.said = ""

    def tick(self, t: Tally, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        total = max(self.total, t.mini_batches)
        counts = (
            f"[parallel] mini-batches {t.mini_batches}/{total} | items {t.items} "
            "({rate}/s) | failed "
            f"{t.items_failed} items, {t.mini_batches_failed} mini-batches | retries {t.retries}"
        )
        if not force and counts == self.said and now - self.last < self.unchanged_every:
            return
        self.last, self.said = now, counts
        print(counts.format(rate=f"{t.items_per_s():,.0f}"), file=sys.stderr, flush=True)


def document(
    t: Tally,
    *,
    status: str,
    error: str | None,
    workers: int,
    workers_requested: int,
    output_file: str | None,
    failures_file: str,
    settings: dict[str, object],
    peak_rss_mb: dict[str, float],
    cpu_s: dict[str, float],
) -> dict[str, object]:
    """The summary JSON the runner stores in the run record."""
    elapsed = t.elapsed()
    return {
        "status": status,
        "error": error,
        "items": t.items,
        "items_failed": t.items_failed,
        "items_returned": t.items_returned,
        "mini_batches": t.mini_batches,
        "mini_batches_failed": t.mini_batches_failed,
        "mini_batches_retried": len(t.retried_ids),
        "retries": t.retries,
        "worker_restarts": t.worker_restarts,
        "elapsed_s": round(elapsed, 3),
        "items_per_s": round(t.items / elapsed, 1) if elapsed > 0 else 0.0,
        "workers": workers,
        "workers_requested": workers_requested,
        "output_file": output_file,
        "failures_file": failures_file,
        "peak_rss_mb": peak_rss_mb,
        "cpu_s": cpu_s,
        "settings": settings,
    }


def render(doc: dict[str, object], first_failure: dict[str, object] | None) -> str:
    """The summary as the step log shows it, with the first failure's traceback in full."""
    error_lines = str(doc["error"]).splitlines() if doc["error"] else []
    lines = [
        f"ParallelStep summary: {doc['status']}" + (f": {error_lines[0]}" if error_lines else ""),
        f"  items         {doc['items']} processed, {doc['items_failed']} failed, "
        f"{doc['items_returned']} returned",
        f"  mini-batches  {doc['mini_batches']} processed, {doc['mini_batches_failed']} failed, "
        f"{doc['mini_batches_retried']} retried ({doc['retries']} retries)",
        f"  throughput    {doc['items_per_s']:,} items/s over {doc['elapsed_s']} s "
        f"with {doc['workers']} workers ({doc['worker_restarts']} restarted)",
        f"  output        {doc['output_file'] or '(none: summary_only or failed)'}",
        f"  failures      {doc['failures_file']}",
    ]
    lines += ["  " + line for line in error_lines[1:]]
    if first_failure is not None:
        where = json.dumps(first_failure["items"])
        if len(where) > 300:
            where = where[:300] + "..."
        last = first_failure["tries"][-1]
        lines += [
            f"First failed mini-batch: #{first_failure['mini_batch']} {where}",
            f"  try {last['try']}: {last['error']}".replace("\n", "\n  "),
        ]
    return "\n".join(lines)
