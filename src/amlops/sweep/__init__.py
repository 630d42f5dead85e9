"""The local HyperDrive: run a SweepStep's trials as subprocesses (``python -m amlops.sweep``)."""
