"""ParallelStep progress: a new line when the counts move, not the same line over and over
while the workers load a model."""

from __future__ import annotations

from amlops.parallel.summary import Progress, Tally


def test_progress_repeats_a_line_only_when_its_counts_moved(capsys):
    progress = Progress(4, every=0, unchanged_every=3600)
    tally = Tally()
    for _ in range(5):  # workers still loading: nothing done yet
        progress.tick(tally)
    tally.mini_batches, tally.items = 1, 100
    progress.tick(tally)
    progress.tick(tally)
    progress.tick(tally, force=True)  # the last line is always printed
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" | ")[0] for line in lines] == [
        "[parallel] mini-batches 0/4",
        "[parallel] mini-batches 1/4",
        "[parallel] mini-batches 1/4",
    ]
