"""Content fingerprints that S3 listings can be compared with: MD5 and multipart ETags.

A single-part object's ETag is the MD5 of its bytes. A multipart object's ETag is
md5(concatenated part MD5s) + "-<parts>", so it can only be reproduced with the part size the
uploader used; `candidate_part_sizes` lists the ones worth trying.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from data_platform.core.files import feed_file

MIB = 1024 * 1024
MIN_PART_SIZE = 5 * MIB  # S3 refuses smaller parts (except the last)
MAX_PARTS = 10_000
AWS_DEFAULT_PART_SIZE = 8 * MIB  # aws-cli / boto3 TransferConfig default


@dataclass(frozen=True)
class PartPolicy:
    """When uploads go multipart and with which part size; the ETag check must use the same."""

    threshold: int = 64 * MIB
    part_size: int = 16 * MIB

    def is_multipart(self, size: int) -> bool:
        return size >= self.threshold

    def part_size_for(self, size: int) -> int:
        return _fit_part_size(max(self.part_size, MIN_PART_SIZE), size)


def _fit_part_size(part_size: int, size: int) -> int:
    # Same rule as s3transfer's ChunksizeAdjuster: double until the part count fits.
    while math.ceil(size / part_size) > MAX_PARTS:
        part_size *= 2
    return part_size


def etag_parts(etag: str) -> int | None:
    """Number of parts of a multipart ETag ('abc-3' -> 3), None for a single-part ETag."""
    _, dash, count = etag.strip('"').rpartition("-")
    return int(count) if dash and count.isdigit() else None


def candidate_part_sizes(size: int, parts: int, policy: PartPolicy) -> list[int]:
    """Part sizes (ours first, then common tool defaults) that split `size` into `parts` parts."""
    bases = [policy.part_size_for(size), AWS_DEFAULT_PART_SIZE, MIN_PART_SIZE, 16 * MIB, 64 * MIB]
    candidates: list[int] = []
    for base in bases:
        fitted = _fit_part_size(base, size)
        if fitted not in candidates and math.ceil(size / fitted) == parts:
            candidates.append(fitted)
    return candidates


def part_sizes_to_try(size: int, etag: str, policy: PartPolicy) -> list[int]:
    """Part sizes that could reproduce a multipart `etag`; none for a single-part one."""
    parts = etag_parts(etag)
    return candidate_part_sizes(size, parts, policy) if parts else []


@dataclass
class Digests:
    """Whole-file MD5 (hex) plus multipart ETags keyed by part size."""

    md5: str
    multipart: dict[int, str] = field(default_factory=dict)

    def matches_etag(self, etag: str) -> bool:
        etag = etag.strip('"')
        if etag_parts(etag) is None:
            return etag == self.md5
        return etag in self.multipart.values()


class _PartHasher:
    def __init__(self, part_size: int) -> None:
        self.part_size = part_size
        self.part_digests: list[bytes] = []
        self.current = hashlib.md5()
        self.filled = 0

    def update(self, block: memoryview) -> None:
        while block:
            take = block[: self.part_size - self.filled]
            self.current.update(take)
            self.filled += len(take)
            block = block[len(take) :]
            if self.filled == self.part_size:
                self.part_digests.append(self.current.digest())
                self.current, self.filled = hashlib.md5(), 0

    def etag(self) -> str:
        digests = list(self.part_digests)
        if self.filled or not digests:
            digests.append(self.current.digest())
        return multipart_etag_of_parts(digests)


def multipart_etag_of_parts(part_md5s: list[bytes]) -> str:
    """ETag S3 gives a completed multipart upload with these part MD5 digests."""
    return f"{hashlib.md5(b''.join(part_md5s)).hexdigest()}-{len(part_md5s)}"


class DigestBuilder:
    """Feed a file's bytes in order; yields its MD5 and multipart ETags for the given part sizes."""

    def __init__(self, part_sizes: list[int] | tuple[int, ...] = ()) -> None:
        self._whole = hashlib.md5()
        self._hashers = [_PartHasher(size) for size in dict.fromkeys(part_sizes)]

    def update(self, block: bytes | memoryview) -> None:
        self._whole.update(block)
        view = memoryview(block)
        for hasher in self._hashers:
            hasher.update(view)

    def result(self) -> Digests:
        return Digests(self._whole.hexdigest(), {h.part_size: h.etag() for h in self._hashers})


def compute_digests(path: Path, part_sizes: list[int] | tuple[int, ...] = ()) -> Digests:
    """MD5 of the file and its multipart ETag for each part size, in one read pass."""
    builder = DigestBuilder(part_sizes)
    feed_file(path, builder.update)
    return builder.result()
