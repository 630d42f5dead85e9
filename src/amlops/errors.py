"""Errors meant for people: one line naming the file, key or argument, and an exit code."""


class AmlopsError(Exception):
    """An error the CLI prints as one line; ``exit_code`` 1 means the work itself failed."""

    exit_code = 1


class ConfigError(AmlopsError):
    """Bad input: a config file, a CLI argument or a pipeline definition. Exit code 2."""

    exit_code = 2


class RunFailed(AmlopsError):
    """A pipeline run that ended Failed; the message names the step and its log tail."""

    def __init__(self, message: str, manifest: object = None):
        super().__init__(message)
        self.manifest = manifest  # what the deploy did up to the failure, for --json and CI
