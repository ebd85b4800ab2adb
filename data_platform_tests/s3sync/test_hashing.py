from __future__ import annotations

import hashlib
import os
from pathlib import Path

from data_platform.s3sync.hashing import (
    MIB,
    DigestBuilder,
    Digests,
    PartPolicy,
    candidate_part_sizes,
    compute_digests,
    etag_parts,
)


def manual_multipart_etag(data: bytes, part_size: int) -> str:
    parts = [data[i : i + part_size] for i in range(0, len(data), part_size)]
    joined = b"".join(hashlib.md5(part).digest() for part in parts)
    return f"{hashlib.md5(joined).hexdigest()}-{len(parts)}"


def test_compute_digests_matches_definition(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 123)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    digests = compute_digests(path, [1024 * 1024, 700_001])
    assert digests.md5 == hashlib.md5(data).hexdigest()
    assert digests.multipart == {
        1024 * 1024: manual_multipart_etag(data, 1024 * 1024),
        700_001: manual_multipart_etag(data, 700_001),
    }


def test_digest_builder_is_independent_of_chunking() -> None:
    data = os.urandom(50_000)
    builder = DigestBuilder([4096])
    for start in range(0, len(data), 777):
        builder.update(data[start : start + 777])
    assert builder.result().multipart[4096] == manual_multipart_etag(data, 4096)


def test_exact_multiple_has_no_empty_last_part() -> None:
    builder = DigestBuilder([10])
    builder.update(b"x" * 30)
    assert builder.result().multipart[10].endswith("-3")


def test_etag_parts() -> None:
    assert etag_parts('"0123abcd-12"') == 12
    assert etag_parts("0123abcd") is None


def test_matches_etag_single_and_multipart() -> None:
    digests = Digests("abc", {5 * MIB: "def-2"})
    assert digests.matches_etag('"abc"')
    assert digests.matches_etag("def-2")
    assert not digests.matches_etag("abd")
    assert not digests.matches_etag("abc-2")


def test_part_size_grows_to_stay_under_ten_thousand_parts() -> None:
    policy = PartPolicy(threshold=64 * MIB, part_size=16 * MIB)
    assert policy.part_size_for(100 * MIB) == 16 * MIB
    huge = 200 * 1024 * MIB
    assert huge / policy.part_size_for(huge) <= 10_000


def test_candidates_only_sizes_giving_that_part_count() -> None:
    policy = PartPolicy(threshold=5 * MIB, part_size=5 * MIB)
    size = 20 * MIB
    assert candidate_part_sizes(size, 4, policy) == [5 * MIB]
    assert candidate_part_sizes(size, 3, policy) == [8 * MIB]
    assert candidate_part_sizes(size, 7, policy) == []
