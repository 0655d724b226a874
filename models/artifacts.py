"""The artifact registry on disk: `artifacts/<kind>/<version>/` with a `manifest.json`.

A version folder appears whole or not at all (written under a temporary name, then
renamed), so a worker that lists or loads while training writes never sees half a
model. Versions sort by creation time, so "newest" needs no clock lookup.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, get_args

import orjson

ArtifactKind = Literal["recs", "scorer"]
ARTIFACT_KINDS: tuple[str, ...] = get_args(ArtifactKind)
MANIFEST = "manifest.json"
VERSION_PATTERN = re.compile(r"^[0-9]{8}-[0-9]{6}-[0-9a-f]{4}$")


class ArtifactError(Exception):
    """A version that does not exist, or a folder that is not a valid artifact."""


def new_version(now: datetime | None = None) -> str:
    """`YYYYMMDD-HHMMSS-xxxx` (UTC): sortable, unique across machines in practice."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{secrets.token_hex(2)}"


def check_version(version: str) -> str:
    """The version, if it is one (it becomes part of a path: nothing else gets through)."""
    if not VERSION_PATTERN.fullmatch(version):
        raise ArtifactError(f"not a version name: {version!r}")
    return version


def check_kind(kind: str) -> ArtifactKind:
    if kind not in ARTIFACT_KINDS:
        raise ArtifactError(f"unknown artifact kind {kind!r}; expected one of {ARTIFACT_KINDS}")
    return kind  # type: ignore[return-value]


def artifact_path(root: Path, kind: str, version: str) -> Path:
    return root / check_kind(kind) / check_version(version)


def write_artifact(
    root: Path,
    kind: str,
    write_files: Callable[[Path], None],
    manifest: dict[str, Any],
    version: str | None = None,
) -> str:
    """Create a version folder: `write_files(folder)` fills it, then the manifest (with
    kind, version and created added) is written and the folder appears atomically."""
    version = check_version(version or new_version())
    final = artifact_path(root, kind, version)
    if final.exists():
        raise ArtifactError(f"{kind} version {version} exists already")
    staging = final.parent / f".{version}.tmp-{os.getpid()}"
    staging.mkdir(parents=True)
    try:
        write_files(staging)
        full = {
            "kind": kind,
            "version": version,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            **manifest,
        }
        (staging / MANIFEST).write_bytes(orjson.dumps(full, option=orjson.OPT_INDENT_2))
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version


def read_manifest(root: Path, kind: str, version: str) -> dict[str, Any]:
    path = artifact_path(root, kind, version) / MANIFEST
    try:
        manifest: dict[str, Any] = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(f"no {kind} version {version} under {root}") from None
    except orjson.JSONDecodeError as exc:
        raise ArtifactError(f"{path} is not valid JSON: {exc}") from exc
    if manifest.get("kind") != kind or manifest.get("version") != version:
        raise ArtifactError(f"{path} describes another artifact")
    return manifest


def folder_manifest(folder: Path, kind: str, fmt: int) -> dict[str, Any]:
    """The manifest of a version folder being loaded, checked to describe an artifact of
    `kind` in file layout `fmt` (what the loader of that kind reads)."""
    try:
        manifest: dict[str, Any] = orjson.loads((folder / MANIFEST).read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ArtifactError(f"{folder}: unreadable manifest: {exc}") from exc
    if manifest.get("kind") != kind or manifest.get("format") != fmt:
        raise ArtifactError(f"{folder}: not a {kind} artifact of format {fmt}")
    return manifest


def list_versions(root: Path, kind: str) -> list[dict[str, Any]]:
    """Manifests of every complete version of `kind`, oldest first."""
    folder = root / check_kind(kind)
    if not folder.is_dir():
        return []
    manifests = []
    for path in sorted(folder.iterdir()):
        if VERSION_PATTERN.fullmatch(path.name) and (path / MANIFEST).is_file():
            try:
                manifests.append(read_manifest(root, kind, path.name))
            except ArtifactError:
                continue  # a broken folder is not a version; loading it would say why
    return manifests


def latest_version(root: Path, kind: str) -> str | None:
    versions = list_versions(root, kind)
    return versions[-1]["version"] if versions else None
