"""The train pipeline with AutoML in place of the train step: its config block needs ``automl:``.

A second module only because a pipeline's name picks its module: the steps are train.py's.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from amlops.config import PipelineConfig, SettingsReader
from amlops.spec import Pipeline


def _train_module():
    # Loaded by file, as deploy loads this one: pipelines/ need not be importable.
    file = Path(__file__).with_name("train.py")
    name = f"_amlops_train_for_automl_{id(file)}"
    spec = importlib.util.spec_from_file_location(name, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while it loads
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[name]
    return module


def build(cfg: PipelineConfig, compute: str) -> Pipeline:
    if not SettingsReader(cfg).has("automl"):
        raise SettingsReader(cfg).fail("automl", "is required for train_automl")
    return _train_module().build(cfg, compute)
