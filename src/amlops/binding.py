"""The binding contract: what a step's script receives for each kind of input, on every backend.

A script receives **paths** everywhere: a dataset it reads is mounted or downloaded, an output
is a folder, a parameter is its value. An ID reaches a script only where Azure ML's runtime
turns it into data itself: the inputs a ParallelStep partitions into ``run(mini_batch)``.
Azure ML v1 passes a script the *dataset ID* for a dataset in direct mode, the only mode a
tabular dataset has (azureml/data/abstract_dataset.py, ``as_named_input``), where the local
runner would pass a folder; so such a binding is refused here, before any backend sees it.
"""

from __future__ import annotations

from collections.abc import Mapping

from amlops.errors import ConfigError
from amlops.spec import DataPathParam, DatasetInput, InputRef, Output, Param, Pipeline, Step

# What a step script receives, for the README and the conformance tests:
# input kind -> (on the local workspace, on Azure ML v1)
RECEIVES: dict[str, tuple[str, str]] = {
    "Param": ("its value", "its value"),
    "Output": ("an empty folder to write", "an empty folder to write (mounted, uploaded after)"),
    "Output.as_input()": ("the producing step's folder", "that folder, mounted"),
    "DataPathParam (ScriptStep)": ("the datastore folder", "the datastore folder, mounted"),
    "DatasetInput, file dataset": (
        "the registered version's folder",
        "the registered version's files, mounted or downloaded",
    ),
    "DatasetInput, tabular dataset (ScriptStep)": ("refused", "refused: the dataset's ID"),
    "ParallelStep input (file)": ("file paths per mini-batch", "file paths per mini-batch"),
    "ParallelStep input (tabular)": (
        "a pandas DataFrame per mini-batch",
        "a pandas DataFrame per mini-batch",
    ),
}


def partitioned(step: Step) -> tuple[object, ...]:
    """The inputs this step's runtime turns into data itself (ParallelStep's ``inputs``)."""
    return step.inputs if step.partitions_inputs else ()


def check_bindings(pipeline: Pipeline, dataset_kinds: Mapping[str, str], where: str) -> None:
    """Refuse any input that would reach a script as an ID on Azure; ``dataset_kinds`` maps
    each configured dataset to ``file`` or ``tabular``."""
    for step in pipeline.steps:
        data = partitioned(step)
        for item in step.all_inputs():
            if not isinstance(item, DatasetInput) or item in data:
                continue
            kind = dataset_kinds.get(item.dataset)
            if kind is None:
                raise ConfigError(
                    f"{where}: step {step.name!r} reads dataset {item.dataset!r}, which is not "
                    "under datasets: in config (its kind, file or tabular, decides what the "
                    "step receives)"
                )
            if kind == "tabular" or item.mode == "direct":
                raise id_binding(where, step, item, tabular=kind == "tabular")


def id_binding(where: str, step: Step, item: DatasetInput, *, tabular: bool) -> ConfigError:
    """The refusal of a dataset that would reach a script as its ID."""
    what = "a tabular dataset" if tabular else "a dataset in direct mode"
    return ConfigError(
        f"{where}: step {step.name!r} reads {what} ({item.dataset!r}); on Azure ML its script "
        "would receive the dataset's ID, not files. Register it as kind: file (mounted or "
        "downloaded as a folder), or read it as a ParallelStep input"
    )


def argument_kind(value: object) -> str:
    """The kind of value a script argument is, as the contract names it."""
    if isinstance(value, Param):
        return "parameter"
    if isinstance(value, Output | InputRef | DataPathParam | DatasetInput):
        return "folder"
    return "literal"
