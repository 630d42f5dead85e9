"""Mini-batch sizing and the failure bounds, without processes."""

from __future__ import annotations

import pytest

from amlops.parallel.batching import (
    InputError,
    InputSpec,
    MiniBatch,
    byte_ranges,
    check_kinds,
    count_items,
    list_files,
    mini_batches,
    parse_input,
    parse_size,
    read_header_and_range,
)
from amlops.parallel.summary import Bounds, Tally


@pytest.mark.parametrize(
    "text, kind, expected",
    [
        (None, "file", 10),
        (None, "tabular", 1024 * 1024),
        ("5", "file", 5),
        ("1024", "tabular", 1024),  # a bare number is bytes for tabular input, as in AML
        ("512kb", "tabular", 512 * 1024),
        ("1MB", "tabular", 1024**2),
        ("2Gb", "tabular", 2 * 1024**3),
    ],
)
def test_mini_batch_size(text, kind, expected):
    assert parse_size(text, kind) == expected


@pytest.mark.parametrize("text, kind", [("0", "file"), ("1MB", "file"), ("1.5MB", "tabular")])
def test_bad_mini_batch_size_names_the_argument(text, kind):
    with pytest.raises(InputError, match=r"^--mini_batch_size"):
        parse_size(text, kind)


def test_byte_ranges_cut_at_line_ends_and_cover_the_file(tmp_path):
    path = tmp_path / "a.csv"
    lines = [f"{i},{'x' * (i % 17)}\n" for i in range(500)]
    path.write_text("id,v\n" + "".join(lines))
    ranges = list(byte_ranges(str(path), 300))
    body = path.read_bytes()[len("id,v\n") :]
    assert b"".join(path.read_bytes()[s:e] for s, e in ranges) == body
    for start, end in ranges:
        assert path.read_bytes()[end - 1 : end] == b"\n"
        assert end - start >= 300 or end == len(path.read_bytes())
    assert (
        sum(count_items(MiniBatch(0, "d", "tabular", (str(path),), s, e)) for s, e in ranges) == 500
    )


def test_a_cut_on_a_line_start_stays_there(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("h\n" + "abc\n" * 4)  # 4-byte rows: 8 bytes is exactly two rows
    assert list(byte_ranges(str(path), 8)) == [(2, 10), (10, 18)]


def test_last_row_without_newline_and_header_only_files(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("id\n1\n2")
    b.write_text("id\n")
    assert list(byte_ranges(str(a), 1024)) == [(3, 6)]
    assert list(byte_ranges(str(b), 1024)) == []
    mb = MiniBatch(0, "d", "tabular", (str(a),), 5, 6)
    assert read_header_and_range(mb) == b"id\n2"


def test_mini_batches_number_consecutively_across_inputs(tmp_path):
    a = InputSpec("a", "file", tmp_path)
    batches = list(mini_batches([(a, ["1", "2", "3"]), (a, ["4"])], 2))
    assert [(m.id, m.paths) for m in batches] == [(0, ("1", "2")), (1, ("3",)), (2, ("4",))]


def test_list_files_recurses_sorted_and_skips_hidden(tmp_path):
    for rel in ["b.csv", "a/z.csv", "a/c.csv", ".hidden.csv", ".git/x.csv"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("h\n")
    spec = InputSpec("d", "tabular", tmp_path)
    assert list_files(spec) == [str(tmp_path / p) for p in ["a/c.csv", "a/z.csv", "b.csv"]]


def test_input_arguments_and_kinds(tmp_path):
    spec = parse_input(f"scoring=tabular:{tmp_path}")
    assert (spec.name, spec.kind, spec.path) == ("scoring", "tabular", tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        parse_input(f"x=file:{tmp_path / 'nope'}")
    with pytest.raises(InputError, match="expected <name>=file:<path>"):
        parse_input(f"x=parquet:{tmp_path}")
    with pytest.raises(InputError, match="mixed types"):
        check_kinds([InputSpec("a", "file", tmp_path), InputSpec("b", "tabular", tmp_path)])


def _tally(items_failed=0, failed=0, total=0) -> Tally:
    return Tally(items_failed=items_failed, mini_batches_failed=failed, mini_batches=total)


def test_bounds_hold_at_the_limit_and_break_one_past_it():
    b = Bounds(error_threshold=4)
    assert b.crossed(_tally(items_failed=4), final=True) is None
    assert "error_threshold=4 crossed: 5 items failed" == b.crossed(_tally(5), final=True)
    assert Bounds(error_threshold=-1).crossed(_tally(10**6), final=True) is None
    c = Bounds(error_threshold=-1, allowed_failed_count=2)
    assert c.crossed(_tally(failed=2, total=9), final=False) is None
    assert c.crossed(_tally(failed=3, total=9), final=False).startswith("allowed_failed_count=2")
    p = Bounds(error_threshold=-1, allowed_failed_percent=25)
    assert p.crossed(_tally(failed=1, total=4), final=True) is None
    assert p.crossed(_tally(failed=2, total=4), final=False) is None  # judged at the end only
    assert "(50.0%)" in p.crossed(_tally(failed=2, total=4), final=True)
    assert Bounds(-1, -1, 100).crossed(_tally(9, 9, 9), final=True) is None
