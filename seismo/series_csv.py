"""The ``timestamp,value`` CSV that ``seismo detect`` reads, checked row by row, and its output.

Every problem is reported with its line number and what was found, and the fix:

* the header may carry a UTF-8 BOM, any case and spaces (``Timestamp, Value``); any
  other header is reported with the columns that were found;
* a value must be a finite number (``nan`` and ``inf`` are refused);
* timestamps must increase strictly (a detector learns in time order; a duplicate or
  a step back is refused with both lines), and all carry a UTC offset or none do;
* the output keeps each input timestamp and value exactly as written, with ``\\n``
  line endings (also on stdout), so ``awk`` and ``grep`` pipelines work.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TextIO

OUTPUT_COLUMNS = ("timestamp", "value", "score", "is_anomaly")


class SeriesError(ValueError):
    """The CSV cannot be scored; the message names the file, the line and the fix."""


@dataclass(frozen=True)
class Row:
    line: int
    stamp_text: str
    value_text: str
    timestamp: datetime
    value: float


def read_series(path: Path) -> list[Row]:
    """Every data row of ``path`` in file order; raises :class:`SeriesError` at the first bad one."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SeriesError(f"{path}: line {line} is not UTF-8 (byte 0x{data[exc.start]:02x}); "
                          "convert the file to UTF-8, e.g. `iconv -f latin1 -t utf-8`") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    while header is not None and not any(cell.strip() for cell in header):
        header = next(reader, None)
    names = [cell.strip().lower() for cell in header or []]
    if "timestamp" not in names or "value" not in names:
        if header is None:
            raise SeriesError(f"{path}: expected columns timestamp,value; the file is empty")
        raise SeriesError(f"{path}: expected columns timestamp,value in the first line; "
                          f"found {','.join(header)!r}")
    ts_col, value_col = names.index("timestamp"), names.index("value")
    rows: list[Row] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        rows.append(_row(path, reader.line_num, cells, ts_col, value_col, rows[-1] if rows else None))
    return rows


def _row(path: Path, line: int, cells: list[str], ts_col: int, value_col: int, previous: Row | None) -> Row:
    if len(cells) <= max(ts_col, value_col):
        raise SeriesError(f"{path}: line {line} has fewer than two fields ({','.join(cells)!r})")
    stamp, value_text = cells[ts_col].strip(), cells[value_col].strip()
    try:
        when = datetime.fromisoformat(stamp)
    except ValueError:
        raise SeriesError(f"{path}: line {line}: timestamp {stamp!r} is not ISO-8601 "
                          "(e.g. 2024-05-01T12:00:00Z)") from None
    try:
        value = float(value_text)
    except ValueError:
        raise SeriesError(f"{path}: line {line}: value {value_text!r} is not a number") from None
    if not math.isfinite(value):
        raise SeriesError(f"{path}: line {line}: value {value_text!r} is not a finite number; "
                          "drop the row or fill the gap")
    if previous is not None:
        try:
            later = when > previous.timestamp
        except TypeError:
            raise SeriesError(f"{path}: line {line}: timestamp {stamp!r} and line {previous.line}'s "
                              f"{previous.stamp_text!r} differ in having a UTC offset; give every "
                              "timestamp one, or none") from None
        if not later:
            what = "repeats" if when == previous.timestamp else "is earlier than"
            raise SeriesError(f"{path}: line {line}: timestamp {stamp!r} {what} line {previous.line}'s "
                              f"({previous.stamp_text!r}); sort the file by timestamp and drop "
                              "duplicates, e.g. `sort -t, -k1,1 -u`")
    return Row(line, stamp, value_text, when, value)


def write_scored(rows: Iterable[tuple[Row, float, bool]], out: TextIO) -> None:
    """``timestamp,value,score,is_anomaly`` with the input's own timestamp and value text; LF endings."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(OUTPUT_COLUMNS)
    for row, score, is_anomaly in rows:
        writer.writerow([row.stamp_text, row.value_text, f"{score:.6f}", int(is_anomaly)])
