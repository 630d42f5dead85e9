"""Sample datasets that install offline: scikit-learn's bundled data, written out as CSV.

``sklearn:<name>`` is the training table (features + ``target``); ``sklearn:<name>-scoring``
is the same rows without the target, with a ``row_id`` key, split across several files the
way scoring data usually lands in a datastore.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from amlops.errors import ConfigError

SCORING_FILES = 4
KEY_COLUMN = "row_id"


def materialise(
    source: str, dest: Path, where: str, *, cache: Path | None = None, fill_cache: bool = False
) -> None:
    """Write the sample named by ``source`` into the empty folder ``dest``.

    ``cache``: a folder of samples written before, reused when scikit-learn, pandas and this
    module are the same (importing scikit-learn takes seconds, and ``deploy --plan`` needs only
    the sample's content); ``fill_cache`` adds this one to it.
    """
    hit = cache / _cache_key(source) if cache is not None else None
    if hit is not None and hit.is_dir():
        shutil.copytree(hit, dest, dirs_exist_ok=True)
        return
    _write(source, dest, where)
    if hit is not None and fill_cache:
        partial = hit.with_name(f".{hit.name}.{os.getpid()}")
        shutil.copytree(dest, partial)
        try:
            partial.rename(hit)  # whole or not at all: a concurrent deploy may win the race
        except OSError:
            shutil.rmtree(partial, ignore_errors=True)


def _cache_key(source: str) -> str:
    from importlib.metadata import version

    code = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    versions = f"sklearn{version('scikit-learn')}-pandas{version('pandas')}"
    return f"{source.replace(':', '-')}-{versions}-{code}"


def _write(source: str, dest: Path, where: str) -> None:
    import sklearn.datasets

    name = source.removeprefix("sklearn:")
    scoring = name.endswith("-scoring")
    name = name.removesuffix("-scoring")
    loader = getattr(sklearn.datasets, f"load_{name}", None)
    if loader is None or name in ("files", "sample_image", "sample_images", "svmlight_file"):
        raise ConfigError(f"{where}: {source!r} is not a scikit-learn bundled dataset")
    kwargs = {"as_frame": True}
    if name == "diabetes":
        kwargs["scaled"] = False  # real units (age in years, bmi, ...) read better
    frame = loader(**kwargs).frame
    dest.mkdir(parents=True, exist_ok=True)
    if not scoring:
        frame.to_csv(dest / f"{name}.csv", index=False)
        return
    features = frame.drop(columns=["target"])
    features.insert(0, KEY_COLUMN, range(1, len(features) + 1))
    chunk = -(-len(features) // SCORING_FILES)
    for i in range(SCORING_FILES):
        part = features.iloc[i * chunk : (i + 1) * chunk]
        part.to_csv(dest / f"{name}-{i:03d}.csv", index=False)
