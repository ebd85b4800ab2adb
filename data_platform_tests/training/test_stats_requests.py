"""What `stats` asks of the S3 server, counted by a proxy in front of it: never a sample body."""

from __future__ import annotations

from data_platform.training import S3StorageBackend
from data_platform.training.layout import STATS_CACHE_KEY
from data_platform_tests.conftest import make_s3_client
from data_platform_tests.training.conftest import CountingProxy


def test_stats_read_no_sample_body_and_a_repeat_costs_one_listing(
    counting_proxy: CountingProxy, bucket: str
) -> None:
    backend = S3StorageBackend(bucket, "training/", client=make_s3_client(counting_proxy.url))
    keys = []
    for task, files in (("ocr", 6), ("qa", 4)):
        for i in range(files):
            samples = [{"input": f"{task} {i} {n}", "output": n} for n in range(i + 1)]
            keys.append(backend.key_of(backend.write_training_samples(task, samples)))
    cache_key = f"training/{STATS_CACHE_KEY}"

    counting_proxy.reset()
    first = backend.get_dataset_stats()
    calls = counting_proxy.calls(bucket)
    assert first["samples"] == 6 * 7 // 2 + 4 * 5 // 2
    assert not [c for c in calls if c.startswith("GET training/") and c != f"GET {cache_key}"]
    assert calls["LIST"] == 1
    assert sorted(c for c in calls if c.startswith("HEAD ")) == sorted(
        f"HEAD training/{key}" for key in keys
    )
    assert calls[f"PUT {cache_key}"] == 1  # the cache, written once for everyone

    counting_proxy.reset()
    assert backend.get_dataset_stats() == first
    assert counting_proxy.calls(bucket) == {"LIST": 1, f"GET {cache_key}": 1}

    # one new file costs one HEAD; the cache is rewritten with it
    backend.write_training_sample("qa", {"input": "new", "output": "one"})
    counting_proxy.reset()
    assert backend.get_dataset_stats()["samples"] == first["samples"] + 1
    calls = counting_proxy.calls(bucket)
    heads = [c for c in calls if c.startswith("HEAD ")]
    assert len(heads) == 1 and calls["LIST"] == 1 and calls[f"PUT {cache_key}"] == 1


def test_a_cache_shared_through_the_store_serves_another_user(
    counting_proxy: CountingProxy, bucket: str, s3_client
) -> None:
    writer = S3StorageBackend(bucket, "training/", client=s3_client)
    for i in range(5):
        writer.write_training_sample("ocr", {"input": i, "output": i})
    expected = writer.get_dataset_stats()  # fills the shared cache

    other_user = S3StorageBackend(bucket, "training/", client=make_s3_client(counting_proxy.url))
    counting_proxy.reset()
    assert other_user.get_dataset_stats() == expected
    assert not [c for c in counting_proxy.calls(bucket) if c.startswith("HEAD ")]


def test_a_corrupt_cache_is_rebuilt(counting_proxy: CountingProxy, bucket: str, s3_client) -> None:
    backend = S3StorageBackend(bucket, "training/", client=s3_client)
    backend.write_training_sample("ocr", {"input": 1, "output": 2})
    expected = backend.get_dataset_stats()
    backend.store.put(STATS_CACHE_KEY, b"{not json")
    assert backend.get_dataset_stats() == expected
    assert backend.store.get(STATS_CACHE_KEY).startswith(b'{"version":1')
