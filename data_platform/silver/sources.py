"""Raw files to load, from a local folder or an object store, grouped by their path snapshot."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from data_platform.core.partitions import PartitionPathError, SnapshotKey, parse_snapshot

if TYPE_CHECKING:
    from data_platform.core.objectstore import ObjectInfo, ObjectStore

SUFFIX_FORMATS = ((".csv.gz", "csv.gz"), (".csv", "csv"), (".parquet", "parquet"))


@dataclass(frozen=True)
class SourceFile:
    """One raw file. `name` is the key or path shown in messages; `open` streams its bytes.

    `local_path` is set when the bytes already sit on a local disk (Parquet needs a seekable
    file; remote Parquet is first copied to a temporary file).
    """

    name: str
    size: int
    etag: str | None
    open: Callable[[], BinaryIO] = field(repr=False, compare=False)
    local_path: Path | None = field(default=None, compare=False)

    @property
    def file_format(self) -> str:
        """`csv`, `csv.gz` or `parquet`, from the name's suffix."""
        fmt = file_format_of(self.name)
        if fmt is None:
            raise ValueError(f"{self.name}: not a .csv, .csv.gz or .parquet file")
        return fmt


def file_format_of(name: str) -> str | None:
    lowered = name.lower()
    return next((fmt for suffix, fmt in SUFFIX_FORMATS if lowered.endswith(suffix)), None)


def wanted(name: str, file_format: str) -> bool:
    """Does a file with this name belong to the chosen `auto|csv|parquet` format?"""
    fmt = file_format_of(name)
    if fmt is None:
        return False
    if file_format == "auto":
        return True
    if file_format == "csv":
        return fmt in ("csv", "csv.gz")
    if file_format == "parquet":
        return fmt == "parquet"
    raise ValueError(f"file format must be auto, csv or parquet, not {file_format!r}")


def group_by_snapshot(files: Iterable[SourceFile]) -> dict[SnapshotKey, list[SourceFile]]:
    """Files per snapshot (sorted by name); a path without the snapshot layout raises
    PartitionPathError naming the key and the rule it broke."""
    groups: dict[SnapshotKey, list[SourceFile]] = {}
    for source in files:
        groups.setdefault(parse_snapshot(source.name), []).append(source)
    return {key: sorted(group, key=lambda f: f.name) for key, group in sorted(groups.items())}


def local_sources(local_dir: Path, file_format: str = "auto") -> list[SourceFile]:
    """Every matching file under `local_dir`; names are their paths (so a `local_dir` that is
    itself inside `year=.../month=...` folders still yields whole snapshots)."""
    root = Path(local_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder; pass the folder holding year=... folders")
    files = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and wanted(relative, file_format) and not path.name.startswith("."):
            files.append(
                SourceFile(
                    name=path.as_posix(),
                    size=path.stat().st_size,
                    etag=None,
                    open=functools.partial(path.open, "rb"),
                    local_path=path,
                )
            )
    return files


def object_store_sources(
    store: ObjectStore, prefix: str, file_format: str = "auto"
) -> list[SourceFile]:
    """Every matching object under `prefix`; names are the store keys."""
    return [
        object_source(store, info) for info in store.list(prefix) if wanted(info.key, file_format)
    ]


def object_source(store: ObjectStore, info: ObjectInfo) -> SourceFile:
    """A listed object as a raw file; its bytes are streamed from the store when opened."""
    return SourceFile(
        name=info.key, size=info.size, etag=info.etag, open=functools.partial(store.open, info.key)
    )


def check_snapshot(snapshot: SnapshotKey, files: Iterable[SourceFile]) -> None:
    """Every file must sit under the snapshot's own path."""
    for source in files:
        found = parse_snapshot(source.name)
        if found != snapshot:
            raise PartitionPathError(
                source.name, f"belongs to snapshot {found.path()}, not {snapshot.path()}"
            )
