"""Deepvue's batch files: the uploaded CSV read into rows, the output CSV written from them."""

from __future__ import annotations

import csv
import io

from simulator.ids import IdFactory
from simulator.providers.deepvue import errors
from simulator.providers.deepvue.fakes import OUTPUT_COLUMNS, Row, output_rows

__all__ = ["output_csv", "parse_batch_file"]


def parse_batch_file(filename: str, data: bytes, max_rows: int) -> list[Row]:
    """The rows of an uploaded CSV with a ``vpa`` column (and optionally ``name``)."""
    suffix = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if suffix not in ("", "csv", "txt") or b"\x00" in data:
        raise errors.InvalidFile()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise errors.InvalidFile() from None
    try:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = next(reader, None)
        if header is None:
            raise errors.EmptyFile()
        columns = [c.strip().lower() for c in header]
        if "vpa" not in columns:
            raise errors.InvalidFileFormat()
        vpa_at = columns.index("vpa")
        name_at = columns.index("name") if "name" in columns else None
        rows: list[Row] = []
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(rows) >= max_rows:
                raise errors.BatchSizeExceeded(
                    f"Batch file exceeds the maximum of {max_rows} records"
                )
            vpa = record[vpa_at].strip() if vpa_at < len(record) else ""
            name = record[name_at].strip() if name_at is not None and name_at < len(record) else ""
            rows.append(Row(vpa, name))
    except csv.Error:
        raise errors.InvalidFile() from None
    if not rows:
        raise errors.EmptyFile()
    return rows


def output_csv(ids: IdFactory, request_id: str, rows: tuple[Row, ...]) -> str:
    """The output file of a completed batch."""
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=OUTPUT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(output_rows(ids, request_id, rows))
    return out.getvalue()
