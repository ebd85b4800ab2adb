"""Decide which same-size local/remote pairs already hold identical bytes.

Never trusts "same key" or "same size" alone: the local MD5 (or multipart ETag with the part size
the object was likely uploaded with) must equal the listed ETag, or, when the ETag cannot be
reproduced (unknown part size, SSE-KMS), the `md5` metadata our uploader stores must match.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.hashcache import HashCache, file_signature, now_ns
from data_platform.s3sync.hashing import (
    Digests,
    PartPolicy,
    compute_digests,
    part_sizes_to_try,
)
from data_platform.s3sync.inventory import Failure, describe_os_error, request_errors

if TYPE_CHECKING:
    from data_platform.s3sync.remote import Remote

log = logging.getLogger(__name__)

METADATA_MD5 = "md5"  # x-amz-meta-md5: whole-file MD5 hex, set by our uploader


@dataclass(frozen=True)
class SameSizePair:
    relative: str
    path: Path
    stat: os.stat_result
    remote: ObjectInfo


def local_digests(
    relative: str,
    path: Path,
    stat: os.stat_result,
    part_sizes: list[int],
    cache: HashCache,
) -> Digests:
    """Digests from the cache when the file is unchanged, else read the file (and remember)."""
    cached = cache.lookup(relative, stat, part_sizes)
    if cached is not None:
        return cached
    started = now_ns()
    digests = compute_digests(path, part_sizes)
    remember_if_unchanged(cache, relative, path, stat, digests, started)
    return digests


def remember_if_unchanged(
    cache: HashCache,
    relative: str,
    path: Path,
    stat: os.stat_result,
    digests: Digests,
    started: int,
) -> None:
    """Cache digests read from `path` only if it still is the file `stat` described."""
    after = os.stat(path)
    if file_signature(after) == file_signature(stat):
        cache.store(relative, after, digests, started)


class IdentityChecker:
    """Runs the comparison of many pairs in a thread pool (hashlib releases the GIL)."""

    def __init__(self, remote: Remote, policy: PartPolicy, cache: HashCache, workers: int) -> None:
        self.remote = remote
        self.policy = policy
        self.cache = cache
        self.workers = workers

    def identical(self, pairs: Iterable[SameSizePair]) -> tuple[set[str], list[Failure]]:
        """Keys whose object equals the local file, and local files that could not be read."""
        same: set[str] = set()
        failures: list[Failure] = []
        slow: list[SameSizePair] = []
        for pair in pairs:
            # Cache hits whose ETag matches are decided here: a no-op sync stays cheap.
            cached = self.cache.lookup(pair.relative, pair.stat, self._part_sizes(pair.remote))
            if cached is not None and cached.matches_etag(pair.remote.etag):
                same.add(pair.remote.key)
            else:
                slow.append(pair)
        if slow:
            with ThreadPoolExecutor(max_workers=min(self.workers, len(slow))) as pool:
                for pair, outcome in zip(slow, pool.map(self._check, slow), strict=True):
                    if isinstance(outcome, Failure):
                        failures.append(outcome)
                    elif outcome:
                        same.add(pair.remote.key)
        return same, failures

    def _part_sizes(self, remote: ObjectInfo) -> list[int]:
        return part_sizes_to_try(remote.size, remote.etag, self.policy)

    def _check(self, pair: SameSizePair) -> bool | Failure:
        remote = pair.remote
        part_sizes = self._part_sizes(remote)
        try:
            digests = local_digests(pair.relative, pair.path, pair.stat, part_sizes, self.cache)
        except OSError as exc:
            return Failure(pair.relative, f"cannot read: {describe_os_error(exc)}")
        if digests.matches_etag(remote.etag):
            return True
        return self._metadata_md5(remote.key) == digests.md5

    def _metadata_md5(self, key: str) -> str | None:
        # Only reached when the ETag cannot be reproduced or really differs: one HEAD.
        try:
            return self.remote.metadata(key).get(METADATA_MD5)
        except request_errors() as exc:
            log.debug("HEAD %s failed (%s); treating it as different", key, exc)
            return None
