"""A separate process that compacts every hot file of a month, one run_compaction per file in a
shuffled order (slot order for SEED -1), retrying ConcurrencyConflictError as a scheduler would.
Used by the concurrency and kill -9 tests:
`python -m data_platform_tests.tiers.compaction_worker URL SEED [ENDPOINT]`.

With PAUSE_AFTER=merged in its environment the worker stops right after it has written its first
merged file (before the manifest commit); with PAUSE_AFTER=version, right after the version file
of a commit that merged (before the head write). It prints `paused after <key>` and waits there to
be killed, so a kill -9 lands at a known point of the commit protocol.
"""

from __future__ import annotations

import os
import random
import sys
import time
from typing import Any

from data_platform.core.objectstore import ObjectStore, object_store_from_url
from data_platform.tiers import ConcurrencyConflictError, run_compaction
from data_platform.tiers.config import slot_of_hot_key

PAUSE_AFTER = "PAUSE_AFTER"


class PausingStore:
    """Delegates to a store; after the conditional write named by `pause_after` it never returns."""

    def __init__(self, store: ObjectStore, pause_after: str) -> None:
        self._store = store
        self._pause_after = pause_after
        self._merged = False

    def put_if_absent(self, key: str, data: Any, metadata: Any = None) -> str:
        etag = self._store.put_if_absent(key, data, metadata)
        name = key.rsplit("/", 2)
        merged = name[-1].startswith("L") and name[-1].endswith(".parquet")
        version = name[-2] == "versions" and self._merged
        self._merged |= merged
        if (merged and self._pause_after == "merged") or (
            version and self._pause_after == "version"
        ):
            print(f"paused after {key}", flush=True)
            time.sleep(3600)
        return etag

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def main(url: str, seed: int, endpoint: str | None = None) -> None:
    def client():
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    store = object_store_from_url(url, client_factory=client if endpoint else None)
    if os.environ.get(PAUSE_AFTER):
        store = PausingStore(store, os.environ[PAUSE_AFTER])
    keys = [i.key for i in store.list("parquet_cp_hot/aws/") if i.key.endswith(".parquet")]
    if seed >= 0:
        random.Random(seed).shuffle(keys)
    conflicts = 0
    for key in keys:
        while True:
            try:
                run_compaction(key, slot_of_hot_key(key), "aws", store=store, timeout_seconds=120)
                break
            except ConcurrencyConflictError:
                conflicts += 1
                time.sleep(random.uniform(0, 0.05))
    print(f"done conflicts={conflicts}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else None)
