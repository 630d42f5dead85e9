"""What an Azure SDK exception means to a person, for every Azure backend: one line, and
whether it says "not found".

azureml-core raises its own exception tree, azure-core ``HttpResponseError``s, and bare
``Exception("... Code: 404 ...")`` (Environment.get); dry runs raise plain Exceptions.
"""

from __future__ import annotations

# How each not-found reads when no status code is attached: "Code: 404" (Environment.get),
# "Cannot find dataset" (Dataset.get_by_name), "... does not exist" / "not found" (pipeline
# endpoints, dry runs).
NOT_FOUND_TEXT = ("code: 404", "not found", "cannot find", "does not exist", "not exist", "no such")


def is_not_found(exc: BaseException) -> bool:
    for holder in (exc, getattr(exc, "response", None)):
        if getattr(holder, "status_code", None) == 404:
            return True
    text = str(exc).lower()
    return any(s in text for s in NOT_FOUND_TEXT)


def first_line(exc: BaseException) -> str:
    """The first line that says something (SDK messages often open with a bare "Error:")."""
    text = str(getattr(exc, "message", None) or exc).strip()
    for line in text.splitlines():
        if line.strip() and not line.strip().endswith(":"):
            return line.strip()
    return type(exc).__name__
