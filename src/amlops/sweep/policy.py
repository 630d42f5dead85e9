"""Early termination as v1's policies judge it (azureml.train.hyperdrive.policy), on the
primary metric's values as each trial logged them; one logged value is one interval."""

from __future__ import annotations

import statistics
from typing import Any


def due(count: int, policy: dict[str, Any]) -> bool:
    """Whether a trial that has logged ``count`` values is judged now."""
    interval, delay = policy["evaluation_interval"], policy["delay_evaluation"]
    return count > 0 and count >= delay and count % interval == 0


def _better(a: float, b: float, goal: str) -> bool:
    return a > b if goal == "maximize" else a < b


def should_stop(
    trial: list[float], others: list[list[float]], policy: dict[str, Any], goal: str
) -> bool:
    """Whether a trial with history ``trial`` stops at its latest interval, given the other
    trials' histories (finished or running)."""
    n = len(trial)
    peers = [h for h in others if len(h) >= n]
    if not peers:
        return False
    mine = trial[n - 1]
    kind = policy["policy"]
    if kind == "bandit":
        best = max if goal == "maximize" else min
        top = best([h[n - 1] for h in peers] + [mine])
        if policy.get("slack_factor") is not None:
            f = policy["slack_factor"]
            bound = top / (1 + f) if goal == "maximize" else top * (1 + f)
        else:
            a = policy["slack_amount"]
            bound = top - a if goal == "maximize" else top + a
        return _better(bound, mine, goal)
    if kind == "median_stopping":
        # Its best so far against the median of the others' running averages.
        averages = [statistics.fmean(h[:n]) for h in peers]
        best = max(trial) if goal == "maximize" else min(trial)
        return _better(statistics.median(averages), best, goal)
    # truncation_selection: the lowest truncation_percentage of trials at this interval stop.
    values = [h[n - 1] for h in peers] + [mine]
    cut = int(len(values) * policy["truncation_percentage"] / 100)
    if cut == 0:
        return False
    ranked = sorted(values, reverse=goal == "maximize")  # best first
    return not _better(mine, ranked[len(values) - cut - 1], goal) and mine in ranked[-cut:]
