"""Readers without a database: encodings, headers, row checks, Parquet types, sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from data_platform.core.partitions import PartitionPathError, SnapshotKey
from data_platform.silver.decoding import StrictDecoder, UndecodableBytes, choose_encoding
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.presets import TablePreset
from data_platform.silver.readers import inspect_file, open_copy_input
from data_platform.silver.sources import group_by_snapshot, local_sources
from data_platform_tests.silver.conftest import (
    HEADER,
    SNAPSHOT,
    csv_bytes,
    sample_rows,
    snapshot_dir,
    write_csv,
    write_parquet,
)


def test_strict_decoder_carries_split_characters_and_names_the_bad_offset() -> None:
    data = "강남구,역삼동\n".encode() * 3
    decoder = StrictDecoder("utf-8")
    text = "".join(decoder.feed(data[i : i + 1], text=True) for i in range(len(data)))
    assert text + decoder.feed(b"", final=True, text=True) == data.decode()

    broken = data[:10] + b"\xff" + data[10:]
    decoder = StrictDecoder("utf-8")
    with pytest.raises(UndecodableBytes) as error:
        for i in range(0, len(broken), 4):
            decoder.feed(broken[i : i + 4])
    assert error.value.offset == 10
    assert error.value.byte == 0xFF


def test_truncated_character_at_end_of_file_is_an_error() -> None:
    decoder = StrictDecoder("cp949")
    decoder.feed("강남".encode("cp949")[:3])
    with pytest.raises(UndecodableBytes) as error:
        decoder.feed(b"", final=True)
    assert error.value.offset == 2


def test_encoding_order_is_utf8_sig_utf8_then_cp949() -> None:
    assert choose_encoding("f", b"\xef\xbb\xbfa,b\n", True, {}) == "utf-8-sig"
    assert choose_encoding("f", "강남구\n".encode(), True, {}) == "utf-8"
    assert choose_encoding("f", "강남구\n".encode("cp949"), True, {}) == "cp949"
    failed: dict[str, UndecodableBytes] = {}
    with pytest.raises(SilverLoadError) as error:
        choose_encoding("raw/x.csv", "강남구".encode() + b"\xff\xff", True, failed)
    assert "raw/x.csv" in str(error.value)
    assert "offset 9" in str(error.value)
    assert set(failed) == {"utf-8", "cp949"}


@pytest.mark.parametrize(
    ("file_name", "encoding", "expected"),
    [
        ("a.csv", "utf-8", "utf-8"),
        ("a.csv", "utf-8-sig", "utf-8-sig"),
        ("a.csv", "cp949", "cp949"),
        ("a.csv.gz", "cp949", "cp949"),
    ],
)
def test_inspect_counts_rows_and_records_the_encoding(
    tmp_path: Path, preset: TablePreset, file_name: str, encoding: str, expected: str
) -> None:
    write_csv(snapshot_dir(tmp_path) / file_name, sample_rows(123), encoding=encoding)
    [source] = local_sources(tmp_path)
    assert inspect_file(source, preset) == (expected, 123)


def test_ragged_row_names_file_and_line(tmp_path: Path, preset: TablePreset) -> None:
    data = csv_bytes(HEADER, sample_rows(5)) + b"9,only,three\n"
    (snapshot_dir(tmp_path) / "r.csv").write_bytes(data)
    [source] = local_sources(tmp_path)
    with pytest.raises(SilverLoadError) as error:
        inspect_file(source, preset)
    assert "r.csv: line 7 has 3 fields but the header has 8" in str(error.value)


def test_missing_and_extra_columns_are_named(tmp_path: Path, preset: TablePreset) -> None:
    header = [c for c in HEADER if c != "floor"] + ["memo"]
    rows = [r[:5] + r[6:] + ["x"] for r in sample_rows(3)]
    write_csv(snapshot_dir(tmp_path) / "c.csv", rows, header=header)
    [source] = local_sources(tmp_path)
    with pytest.raises(SilverLoadError) as error:
        inspect_file(source, preset)
    message = str(error.value)
    assert "missing ['floor']" in message
    assert "extra ['memo']" in message


def test_ignored_extra_columns_stream_in_chunks(tmp_path: Path, preset: TablePreset) -> None:
    import dataclasses

    lenient = dataclasses.replace(preset, ignore_extra_columns=True)
    rows = [[*r, "메모"] for r in sample_rows(10)]
    write_csv(snapshot_dir(tmp_path) / "e.csv", rows, header=[*HEADER, "memo"], encoding="cp949")
    [source] = local_sources(tmp_path)
    with open_copy_input(source, lenient, {}, chunk_rows=3) as copy_input:
        assert copy_input.columns == tuple(HEADER)
        assert copy_input.pg_encoding == "UTF8"  # re-encoded by the transforming path
        pieces = list(copy_input.pieces)
    assert [(p.first_row, p.rows) for p in pieces] == [(1, 3), (4, 3), (7, 3), (10, 1)]
    blocks = [p.data for p in pieces]
    assert [block.count(b"\n") for block in blocks] == [3, 3, 3, 1]
    assert "메모" not in b"".join(blocks).decode()


def test_parquet_wrong_column_type_is_named(tmp_path: Path, preset: TablePreset) -> None:
    write_parquet(snapshot_dir(tmp_path) / "p.parquet", sample_rows(5), typed=False)
    [source] = local_sources(tmp_path)
    with pytest.raises(SilverLoadError) as error:
        inspect_file(source, preset)
    assert "record_id is String in the file but bigint in the preset" in str(error.value)


def test_parquet_streams_in_batches_across_row_groups(tmp_path: Path, preset: TablePreset) -> None:
    write_parquet(snapshot_dir(tmp_path) / "p.parquet", sample_rows(250), row_group_size=40)
    [source] = local_sources(tmp_path)
    assert inspect_file(source, preset) == (None, 250)
    with open_copy_input(source, preset, {}, chunk_rows=32) as copy_input:
        pieces = list(copy_input.pieces)
    assert [p.first_row for p in pieces] == list(range(1, 251, 32))
    assert sum(p.rows for p in pieces) == 250
    assert max(p.rows for p in pieces) <= 32
    # binary COPY (every column maps exactly): each piece starts with a tuple's field count
    assert copy_input.copy_format == "binary"
    assert all(p.rows == p.lines and p.data[:2] == (8).to_bytes(2, "big") for p in pieces)


def test_sources_group_by_snapshot_and_filter_formats(tmp_path: Path) -> None:
    other = SnapshotKey(2024, 6, "부산광역시", "해운대구")
    write_csv(snapshot_dir(tmp_path) / "b.csv", sample_rows(1))
    write_csv(snapshot_dir(tmp_path) / "a.csv.gz", sample_rows(1))
    write_parquet(snapshot_dir(tmp_path, other) / "c.parquet", sample_rows(1))
    (snapshot_dir(tmp_path) / "notes.txt").write_text("not data")
    groups = group_by_snapshot(local_sources(tmp_path))
    assert list(groups) == [SNAPSHOT, other]
    assert [Path(f.name).name for f in groups[SNAPSHOT]] == ["a.csv.gz", "b.csv"]
    assert [Path(f.name).name for f in local_sources(tmp_path, "parquet")] == ["c.parquet"]
    assert len(local_sources(tmp_path, "csv")) == 2


def test_path_without_region_is_reported_with_the_key(tmp_path: Path) -> None:
    folder = tmp_path / "year=2024" / "month=05" / "sigungu=강남구"
    folder.mkdir(parents=True)
    write_csv(folder / "x.csv", sample_rows(1))
    with pytest.raises(PartitionPathError) as error:
        group_by_snapshot(local_sources(tmp_path))
    assert "sigungu=강남구/x.csv" in str(error.value)
    assert "region=" in error.value.rule
