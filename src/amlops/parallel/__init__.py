"""ParallelRunStep semantics on this machine: the driver behind ``python -m amlops.parallel``.

The local runner starts the driver for every ParallelStep; the driver splits the inputs into
mini-batches, feeds them to worker processes that call the entry script's ``run()``, and
publishes the appended output only when the step's error bounds hold.
"""
