"""Prepare a table for training: clean it, then split it reproducibly."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

TASKS = ("regression", "classification")


def read_table(folder: Path) -> pd.DataFrame:
    """Every CSV under ``folder`` (or the file itself), concatenated in name order."""
    files = [folder] if folder.is_file() else sorted(folder.rglob("*.csv"))
    if not files:
        raise ValueError(f"no CSV files in {folder}")
    return pd.concat([pd.read_csv(f) for f in files], ignore_index=True)


def clean(frame: pd.DataFrame, target: str, task: str) -> pd.DataFrame:
    """Drop rows without a target and columns with no values; type the target for the task."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if target not in frame.columns:
        raise ValueError(f"target column {target!r} not in {list(frame.columns)}")
    frame = frame.dropna(subset=[target]).dropna(axis="columns", how="all")
    if task == "regression":
        frame = frame.assign(**{target: pd.to_numeric(frame[target], errors="coerce")})
        frame = frame.dropna(subset=[target])
    else:
        frame = frame.assign(**{target: frame[target].astype(str)})
    if len(frame) < 10:
        raise ValueError(f"only {len(frame)} usable rows: need at least 10")
    return frame.reset_index(drop=True)


def split(
    frame: pd.DataFrame, target: str, task: str, test_size: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded train/test split, stratified for classification when every class can be."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1, got {test_size}")
    stratify = None
    if task == "classification" and frame[target].value_counts().min() >= 2:
        stratify = frame[target]
    train, test = train_test_split(frame, test_size=test_size, random_state=seed, stratify=stratify)
    return train.reset_index(drop=True), test.reset_index(drop=True)


def feature_types(frame: pd.DataFrame, target: str) -> dict[str, list[str]]:
    """Numeric and categorical feature columns; strings and booleans count as categorical."""
    features = frame.drop(columns=[target])
    numeric = [c for c in features.columns if pd.api.types.is_numeric_dtype(features[c])]
    numeric = [c for c in numeric if not pd.api.types.is_bool_dtype(features[c])]
    categorical = [c for c in features.columns if c not in numeric]
    return {"numeric": numeric, "categorical": categorical}
