"""A separate process that compacts every hot file of a month, one run_compaction per file in a
shuffled order, retrying ConcurrencyConflictError as a scheduler would. Used by the
concurrency and kill -9 tests: `python -m data_platform_tests.tiers.compaction_worker URL SEED`."""

from __future__ import annotations

import random
import sys
import time

from data_platform.core.objectstore import object_store_from_url
from data_platform.tiers import ConcurrencyConflictError, run_compaction
from data_platform.tiers.config import slot_of_hot_key


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
    keys = [i.key for i in store.list("parquet_cp_hot/aws/") if i.key.endswith(".parquet")]
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
