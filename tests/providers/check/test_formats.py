"""The incremental RFC 4180 reader agrees with Python's csv module, however the bytes arrive."""

from __future__ import annotations

import csv
import io
import itertools

from hypothesis import given
from hypothesis import strategies as st

from simulator.providers.check.formats import CsvScanner

cell = st.text(st.sampled_from('ab ,"\r\n\u00e9'), max_size=6)
rows = st.lists(st.lists(cell, min_size=1, max_size=4), min_size=1, max_size=8)


def _line(row: list[str]) -> str:
    """RFC 4180 (csv.writer leaves a lone CR unquoted when the terminator is LF)."""
    if row == [""]:
        return '""'
    quoted = [
        '"' + c.replace('"', '""') + '"' if any(ch in c for ch in ',"\r\n') else c for c in row
    ]
    return ",".join(quoted)


@given(rows=rows, terminator=st.sampled_from(["\n", "\r\n"]), cuts=st.lists(st.integers(0, 200)))
def test_scanner_matches_csv_module_at_any_chunking(
    rows: list[list[str]], terminator: str, cuts: list[int]
) -> None:
    text = "".join(_line(row) + terminator for row in rows)
    expected = []
    reader = csv.reader(io.StringIO(text, newline=""))
    line = 1
    for written, record in zip(rows, reader, strict=True):
        # A line of nothing but spaces is a blank line to Check's reader (and skipped).
        if not (len(written) == 1 and written[0] and not written[0].strip(" ")):
            expected.append((line, record))
        line = reader.line_num + 1

    scanner = CsvScanner(max_chars=10_000)
    got = []
    edges = sorted({0, len(text), *(c for c in cuts if c < len(text))})
    for start, end in itertools.pairwise(edges):
        got += scanner.feed(text[start:end])
    got += scanner.finish()
    assert [(r.line, [c.text for c in r.cells]) for r in got if not r.blank()] == expected


def test_scanner_keeps_at_most_max_chars_plus_one_but_counts_all() -> None:
    scanner = CsvScanner(max_chars=5)
    records = scanner.feed('"' + "x" * 40 + '",short\n')
    (first, second) = records[0].cells
    assert (len(first.text), first.length) == (6, 40)
    assert (second.text, second.length) == ("short", 5)
