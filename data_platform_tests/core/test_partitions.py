import dagster as dg
import pytest

from data_platform.core.partitions import (
    PartitionPathError,
    SnapshotKey,
    area_key,
    format_partition_path,
    parse_area_key,
    parse_snapshot,
)

TRICKY_NAMES = [
    ("서울특별시", "강남구"),
    ("a/b", "c|d"),
    ("x~y", "100%"),
    ("[1,2]", "..."),
    ("tab\there", "new\nline"),
    ("%7E", "%25"),
]


def test_parse_korean_key_with_prefix_and_file() -> None:
    key = "raw/main/year=2024/month=05/region=서울특별시/sigungu=강남구/part-0.csv"
    snapshot = parse_snapshot(key)
    assert snapshot == SnapshotKey(2024, 5, "서울특별시", "강남구")
    assert snapshot.month_key == "2024-05-01"
    assert format_partition_path(snapshot) == "year=2024/month=05/region=서울특별시/sigungu=강남구"
    assert parse_snapshot(snapshot.path()) == snapshot


@pytest.mark.parametrize(
    ("key", "rule"),
    [
        ("year=2024/month=05/sigungu=강남구/a.csv", "missing segment region="),
        ("year=24/month=05/region=r/sigungu=s/a.csv", "year=24 is not a 4-digit year"),
        ("year=2024/month=13/region=r/sigungu=s/a.csv", "month=13 is not a 2-digit month 01-12"),
        ("year=2024/month=ab/region=r/sigungu=s/a.csv", "month=ab is not a 2-digit month"),
        ("year=2024/year=2025/month=01/region=r/sigungu=s", "segment year= appears twice"),
        ("year=2024/month=05/region=/sigungu=s/a.csv", "missing segment region="),
        ("year=2024/month=5/region=r/sigungu=s/a.csv", "month=5 is not a 2-digit month"),
        ("region=r/year=2024/month=05/sigungu=s/a.csv", "consecutive and in order"),
        ("year=2024/month=05/x/region=r/sigungu=s/a.csv", "consecutive and in order"),
    ],
)
def test_broken_keys_name_the_key_and_the_rule(key: str, rule: str) -> None:
    with pytest.raises(PartitionPathError) as raised:
        parse_snapshot(key)
    assert rule in str(raised.value)
    assert raised.value.path == key


@pytest.mark.parametrize(("region", "sigungu"), TRICKY_NAMES)
def test_area_keys_round_trip_and_are_valid_dagster_keys(region: str, sigungu: str) -> None:
    key = area_key(region, sigungu)
    assert parse_area_key(key) == (region, sigungu)
    for forbidden in ("/", "|", ",", "[", "]", "...", "\t", "\n"):
        assert forbidden not in key
    partitions = dg.MultiPartitionsDefinition(
        {
            "month": dg.StaticPartitionsDefinition(["2024-05-01"]),
            "area": dg.StaticPartitionsDefinition([key]),
        }
    )
    multi_key = partitions.get_partition_keys()[0]
    assert partitions.get_partition_key_from_str(str(multi_key)).keys_by_dimension["area"] == key


def test_korean_area_key_stays_readable() -> None:
    assert area_key("서울특별시", "강남구") == "서울특별시~강남구"


def test_parse_area_key_rejects_other_strings() -> None:
    for bad in ("no-separator", "~sigungu", "region~", "a~b~c"):
        with pytest.raises(ValueError, match="not an area key"):
            parse_area_key(bad)


def test_decomposed_korean_names_are_the_same_snapshot_and_area() -> None:
    import unicodedata

    from data_platform.core.partitions import SnapshotKey, area_key, parse_area_key, parse_snapshot

    composed = "year=2024/month=05/region=서울특별시/sigungu=강남구/a.csv"
    decomposed = unicodedata.normalize("NFD", composed)
    assert decomposed != composed
    assert parse_snapshot(decomposed) == parse_snapshot(composed)
    nfd_key = SnapshotKey(2024, 5, *unicodedata.normalize("NFD", "서울특별시 강남구").split())
    assert nfd_key == SnapshotKey(2024, 5, "서울특별시", "강남구")
    assert nfd_key.area_key == area_key("서울특별시", "강남구")
    assert parse_area_key(unicodedata.normalize("NFD", nfd_key.area_key)) == (
        "서울특별시",
        "강남구",
    )
