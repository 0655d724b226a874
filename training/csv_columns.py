"""Named columns out of a headed CSV file, for the training loaders' input files.

Headers are matched case-insensitively in any order, blank lines skipped, and every
error names the file and line, so a person fixing a 100,000-line export finds it.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path


def csv_columns(
    path: Path, required: Sequence[str], optional: Sequence[str] = ()
) -> Iterator[tuple[int, list[str], list[str | None]]]:
    """`(line, required values, optional values)` per data row, stripped; None for an
    optional column the header lacks."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next((r for r in reader if r), None)
        if header is None:
            raise ValueError(f"{path}: empty file")
        columns = [h.strip().lower() for h in header]
        missing = [c for c in required if c not in columns]
        if missing:
            also = f" (and optionally {', '.join(optional)})" if optional else ""
            raise ValueError(
                f"{path}:{reader.line_num}: header needs columns {', '.join(required)}{also}; "
                f"missing {', '.join(missing)}"
            )
        at = [columns.index(c) for c in required]
        maybe = [columns.index(c) if c in columns else None for c in optional]
        width = max([*at, *(i for i in maybe if i is not None)]) + 1
        for record in reader:
            if not any(cell.strip() for cell in record):
                continue
            if len(record) < width:
                raise ValueError(
                    f"{path}:{reader.line_num}: expected at least {width} fields, got {len(record)}"
                )
            yield (
                reader.line_num,
                [record[i].strip() for i in at],
                [None if i is None else record[i].strip() for i in maybe],
            )
