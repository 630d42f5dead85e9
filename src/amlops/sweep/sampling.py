"""Hyperparameter sampling as v1's samplers define it: grid and random exact and seeded here;
Bayesian through optuna's TPE, the documented local stand-in for Azure's own optimizer."""

from __future__ import annotations

import itertools
import math
import random
from typing import Any


def grid(space: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every combination of the choices, in declaration order (the last parameter fastest)."""
    names = [p["name"] for p in space]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(
        *(p["values"] for p in space)
    )]  # fmt: skip


def _quantize(value: float, q: float, integral: bool) -> Any:
    quantized = round(value / q) * q
    return int(round(quantized)) if integral else quantized


def draw(p: dict[str, Any], rng: random.Random) -> Any:
    """One value of a v1 parameter expression (parameter_expressions.py semantics)."""
    kind, v = p["expression"], p["values"]
    integral = all(isinstance(x, int) for x in v)  # quniform(50, 300, 50) passes 150, not 150.0
    if kind == "choice":
        return rng.choice(v)
    if kind == "randint":
        return rng.randrange(v[0])
    if kind in ("uniform", "quniform"):
        x = rng.uniform(v[0], v[1])
    elif kind in ("loguniform", "qloguniform"):
        x = math.exp(rng.uniform(v[0], v[1]))
    else:  # normal, qnormal
        x = rng.gauss(v[0], v[1])
    return _quantize(x, v[2], integral) if kind.startswith("q") else x


class RandomSampler:
    def __init__(self, space: list[dict[str, Any]], seed: int):
        self.space, self.rng = space, random.Random(seed)

    def ask(self) -> tuple[Any, dict[str, Any]]:
        return None, {p["name"]: draw(p, self.rng) for p in self.space}

    def tell(self, token: Any, value: float | None) -> None:
        pass


class GridSampler:
    def __init__(self, space: list[dict[str, Any]]):
        self.points = grid(space)

    def ask(self) -> tuple[Any, dict[str, Any]] | None:
        return (None, self.points.pop(0)) if self.points else None

    def tell(self, token: Any, value: float | None) -> None:
        pass


class BayesianSampler:
    """optuna's TPE, seeded: choice is categorical, uniform continuous, quniform continuous and
    quantized as v1 quantizes (TPE learns from the value it proposed)."""

    def __init__(self, space: list[dict[str, Any]], seed: int, goal: str):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space = space
        self.study = optuna.create_study(
            direction=goal, sampler=optuna.samplers.TPESampler(seed=seed)
        )
        self.distributions = {}
        for p in space:
            v = p["values"]
            if p["expression"] == "choice":
                d = optuna.distributions.CategoricalDistribution(list(v))
            else:  # uniform, quniform: the spec allows nothing else for bayesian
                d = optuna.distributions.FloatDistribution(float(v[0]), float(v[1]))
            self.distributions[p["name"]] = d

    def ask(self) -> tuple[Any, dict[str, Any]]:
        trial = self.study.ask(self.distributions)
        values = {}
        for p in self.space:
            x = trial.params[p["name"]]
            if p["expression"] == "quniform":
                v = p["values"]
                x = _quantize(x, v[2], all(isinstance(n, int) for n in v))
            values[p["name"]] = x
        return trial, values

    def tell(self, token: Any, value: float | None) -> None:
        import optuna

        if value is None:
            self.study.tell(token, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(token, value)


def sampler(kind: str, space: list[dict[str, Any]], seed: int, goal: str):
    if kind == "grid":
        return GridSampler(space)
    if kind == "bayesian":
        return BayesianSampler(space, seed, goal)
    return RandomSampler(space, seed)
