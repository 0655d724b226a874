"""Reading catalogue files for `omotenashi items load`: JSON lines, CSV, MovieLens items.

Every row goes through the API's own `ItemIn` model, so a file can hold nothing the
HTTP endpoint would refuse.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import ValidationError

from engine.api.schemas.items import ItemIn

CatalogFormat = Literal["auto", "jsonl", "csv", "movielens"]
MOVIELENS_HEADER = "item_id:token"


def read_items(path: Path, fmt: CatalogFormat = "auto") -> Iterator[ItemIn]:
    """Items from the file; `ValueError` naming the line for the first bad row."""
    chosen = _detect(path) if fmt == "auto" else fmt
    rows = {"jsonl": _jsonl, "csv": _csv, "movielens": _movielens}[chosen](path)
    for line, row in rows:
        try:
            yield ItemIn.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{path}:{line}: {where}: {first['msg']}") from None


def _detect(path: Path) -> Literal["jsonl", "csv", "movielens"]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        first = fh.readline()
    if first.startswith(MOVIELENS_HEADER) or first.count("|") >= 20:
        return "movielens"
    if first.lstrip().startswith("{"):
        return "jsonl"
    return "csv"


def _jsonl(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("rb") as fh:
        for line, raw in enumerate(fh, 1):
            if raw.strip():
                try:
                    yield line, orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{line}: not JSON: {exc}") from None


def _csv(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Header `item_id,category,price[,title,tags,available]`; tags `;`-separated."""
    with path.open(newline="", encoding="utf-8") as fh:
        for line, row in enumerate(csv.DictReader(fh), 2):
            item: dict[str, Any] = {k: v for k, v in row.items() if k and v not in (None, "")}
            if "tags" in item:
                item["tags"] = [t for t in item["tags"].split(";") if t]
            if "available" in item:
                item["available"] = item["available"].strip().lower() in ("1", "true", "yes")
            yield line, item


def _movielens(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """ml-100k `.item` (tab-separated, genres in `class`) or GroupLens `u.item` (pipe-
    separated, 19 genre flags): the first genre is the category, all are tags."""
    u_item_genres = [
        "unknown",
        "action",
        "adventure",
        "animation",
        "children's",
        "comedy",
        "crime",
        "documentary",
        "drama",
        "fantasy",
        "film-noir",
        "horror",
        "musical",
        "mystery",
        "romance",
        "sci-fi",
        "thriller",
        "war",
        "western",
    ]
    with path.open(encoding="latin-1") as fh:
        for line, text in enumerate(fh, 1):
            text = text.rstrip("\n")
            if not text or text.startswith(MOVIELENS_HEADER):
                continue
            if "|" in text:
                parts = text.split("|")
                item_id, title = parts[0], parts[1]
                genres = [
                    g for g, flag in zip(u_item_genres, parts[5:], strict=False) if flag == "1"
                ]
            else:
                parts = text.split("\t")
                item_id, title = parts[0], parts[1] if len(parts) > 1 else ""
                genres = parts[3].split() if len(parts) > 3 else []
            tags = [_key(g) for g in genres] or ["unknown"]
            yield (
                line,
                {
                    "item_id": item_id,
                    "title": title,
                    "category": tags[0],
                    "tags": tags,
                    "price": 0.0,
                },
            )


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9_-]+", "-", text.lower()).strip("-")[:64] or "unknown"
