"""The snapshot loader against a real Postgres: atomic replace, no bloat, clear refusals."""

from __future__ import annotations

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from data_platform.core.partitions import SnapshotKey
from data_platform.silver.errors import SilverLoadError
from data_platform.silver.loader import (
    ensure_table,
    load_snapshot,
    snapshot_row_count,
    table_size_bytes,
)
from data_platform.silver.presets import TablePreset
from data_platform.silver.readers import open_copy_input
from data_platform.silver.sources import SourceFile, group_by_snapshot, local_sources
from data_platform_tests.silver.conftest import (
    HEADER,
    SNAPSHOT,
    csv_bytes,
    expected_rows,
    relations,
    sample_rows,
    snapshot_dir,
    table_rows,
    write_csv,
    write_parquet,
)

OTHER = SnapshotKey(2024, 5, "서울특별시", "서초구")
ADVISORY_LOCKS = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)


def load_dir(conn, preset: TablePreset, root: Path, **kwargs):
    [(snapshot, files)] = group_by_snapshot(local_sources(root)).items()
    return load_snapshot(conn, preset, snapshot, files, **kwargs)


def loaded_before(conn, preset: TablePreset, tmp_path: Path, rows: list[list[str]]):
    """Load `rows` as the snapshot's current content and return the table's rows."""
    write_csv(snapshot_dir(tmp_path / "old") / "old.csv", rows)
    load_dir(conn, preset, tmp_path / "old")
    return table_rows(conn, preset)


def test_every_encoding_and_format_loads_and_is_recorded(conn, preset, tmp_path: Path) -> None:
    folder = snapshot_dir(tmp_path)
    write_csv(folder / "1.csv", sample_rows(100, 0), encoding="cp949")
    write_csv(folder / "2.csv", sample_rows(100, 100), encoding="utf-8-sig")
    write_csv(folder / "3.csv", sample_rows(100, 200), encoding="utf-8")
    write_csv(folder / "4.csv.gz", sample_rows(100, 300), encoding="cp949")
    write_parquet(folder / "5.parquet", sample_rows(100, 400), row_group_size=30)
    result = load_dir(conn, preset, tmp_path, chunk_rows=25)
    assert [(Path(f.name).name, f.encoding, f.rows) for f in result.files] == [
        ("1.csv", "cp949", 100),
        ("2.csv", "utf-8-sig", 100),
        ("3.csv", "utf-8", 100),
        ("4.csv.gz", "cp949", 100),
        ("5.parquet", None, 100),
    ]
    assert result.rows == 500
    assert table_rows(conn, preset) == expected_rows(sample_rows(500))
    assert snapshot_row_count(conn, preset, SNAPSHOT) == 500


def test_reloads_replace_the_snapshot_and_do_not_grow_the_table(conn, preset, tmp_path) -> None:
    write_csv(snapshot_dir(tmp_path / "main") / "a.csv", sample_rows(2000))
    write_csv(snapshot_dir(tmp_path / "other", OTHER) / "b.csv", sample_rows(10))
    load_dir(conn, preset, tmp_path / "other")
    load_dir(conn, preset, tmp_path / "main")
    first = table_rows(conn, preset)
    size_after_one = table_size_bytes(conn, preset)
    for _ in range(4):
        load_dir(conn, preset, tmp_path / "main")
    assert table_rows(conn, preset) == first
    assert table_size_bytes(conn, preset) <= size_after_one
    assert snapshot_row_count(conn, preset, OTHER) == 10
    assert len(relations(conn)) == 3  # the parent and one leaf per snapshot, nothing left over


def test_ragged_row_fails_naming_file_and_row_and_keeps_old_rows(conn, preset, tmp_path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    data = csv_bytes(HEADER, sample_rows(20)) + b"99,only,three\n"
    (snapshot_dir(tmp_path / "new") / "ragged.csv").write_bytes(data)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "new")
    message = str(error.value)
    assert "ragged.csv: data row 21 (line 22)" in message
    assert "missing data for column" in message
    assert table_rows(conn, preset) == before


def test_bad_byte_deep_in_a_file_is_reported_with_its_offset(conn, preset, tmp_path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    data = csv_bytes(HEADER, sample_rows(20_000))
    assert len(data) > 1_500_000  # past the first MiB that encoding detection reads
    offset = data.index(b"\n", 1_400_000) + 1
    data = data[:offset] + b"\xff" + data[offset:]
    (snapshot_dir(tmp_path / "new") / "broken.csv").write_bytes(data)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "new")
    message = str(error.value)
    assert "broken.csv" in message
    assert f"utf-8 with a bad byte at offset {offset:,}" in message
    assert table_rows(conn, preset) == before


def test_cp949_after_a_long_ascii_start_falls_back_from_utf8(conn, preset, tmp_path) -> None:
    ascii_rows = [["1", "d", "c", "a", "1.00", "1", "1", "2024-05-01"]] * 40_000
    rows = [[str(i), *r[1:]] for i, r in enumerate(ascii_rows)] + sample_rows(10, 40_000)
    write_csv(snapshot_dir(tmp_path) / "late.csv", rows, encoding="cp949")
    result = load_dir(conn, preset, tmp_path)
    assert result.files[0].encoding == "cp949"
    assert table_rows(conn, preset)[-10:] == expected_rows(sample_rows(10, 40_000))


def test_parquet_with_a_wrong_column_type_fails_and_keeps_old_rows(conn, preset, tmp_path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    folder = snapshot_dir(tmp_path / "new")
    write_csv(folder / "fine.csv", sample_rows(5, 100))
    write_parquet(folder / "strings.parquet", sample_rows(5, 200), typed=False)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "new")
    assert "strings.parquet: column types do not fit" in str(error.value)
    assert table_rows(conn, preset) == before


def test_file_outside_the_snapshot_path_is_refused(conn, preset, tmp_path: Path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    stray = tmp_path / "year=2024" / "month=05" / "sigungu=강남구" / "stray.csv"
    stray.parent.mkdir(parents=True)
    write_csv(stray, sample_rows(3))
    source = SourceFile(str(stray), stray.stat().st_size, None, stray.open, local_path=None)
    with pytest.raises(SilverLoadError, match=r"stray\.csv: missing segment region="):
        load_snapshot(conn, preset, SNAPSHOT, [source])
    assert table_rows(conn, preset) == before


def test_snapshot_columns_in_the_file_must_match_the_path(conn, preset, tmp_path: Path) -> None:
    header = ["source_year", "source_month", "region", "sigungu", *HEADER]
    matching = [["2024", "05", "서울특별시", "강남구", *r] for r in sample_rows(3)]
    write_csv(snapshot_dir(tmp_path / "ok") / "ok.csv", matching, header=header)
    load_dir(conn, preset, tmp_path / "ok")
    before = table_rows(conn, preset)
    assert before == expected_rows(sample_rows(3))

    contradicting = [*matching, ["2024", "05", "서울특별시", "서초구", *sample_rows(1, 9)[0]]]
    write_csv(snapshot_dir(tmp_path / "bad") / "bad.csv", contradicting, header=header)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "bad")
    message = str(error.value)
    assert "bad.csv: data row 4 (line 5)" in message
    assert (
        "contradict the file's path year=2024/month=05/region=서울특별시/sigungu=강남구" in message
    )
    assert table_rows(conn, preset) == before


def test_missing_extra_and_ignored_columns(conn, preset, tmp_path: Path) -> None:
    header = [*HEADER, "memo"]
    rows = [[*r, "메모, 길게"] for r in sample_rows(7)]
    write_csv(snapshot_dir(tmp_path) / "extra.csv", rows, header=header, encoding="cp949")
    with pytest.raises(SilverLoadError, match=r"missing \[\], extra \['memo'\]"):
        load_dir(conn, preset, tmp_path)
    lenient = dataclasses.replace(preset, ignore_extra_columns=True)
    result = load_dir(conn, lenient, tmp_path, chunk_rows=2)
    assert result.files[0].encoding == "cp949"
    assert table_rows(conn, preset) == expected_rows(sample_rows(7))


def test_existing_table_with_other_columns_is_refused(conn, preset, tmp_path: Path) -> None:
    ensure_table(conn, preset)
    narrower = dataclasses.replace(preset, columns=preset.columns[:-1])
    write_csv(snapshot_dir(tmp_path) / "a.csv", sample_rows(1))
    with pytest.raises(SilverLoadError, match=r"has extra \['contract_date'\]"):
        load_dir(conn, narrower, tmp_path)


def test_plain_table_from_the_old_loader_is_replaced_by_delete_insert(
    conn, preset, tmp_path
) -> None:
    from data_platform.silver.tables import create_parent_sql

    plain = create_parent_sql(preset).as_string(conn).split(" PARTITION BY")[0]
    with conn.cursor() as cur:
        cur.execute(plain)
    conn.commit()
    write_csv(snapshot_dir(tmp_path) / "a.csv", sample_rows(30))
    load_dir(conn, preset, tmp_path)
    load_dir(conn, preset, tmp_path)
    assert table_rows(conn, preset) == expected_rows(sample_rows(30))
    assert relations(conn) == ["silver_stage_1_main"]


class _BlockingStream:
    """A file whose first read waits for `release`, so its loader holds the snapshot lock."""

    def __init__(self, data: bytes, opened: threading.Event, release: threading.Event) -> None:
        self._data, self._opened, self._release = data, opened, release

    def read(self, size: int = -1) -> bytes:
        self._opened.set()
        self._release.wait(30)
        data, self._data = self._data, b""
        return data

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass


def test_two_loaders_of_one_snapshot_take_turns(pg_url: str, preset, tmp_path: Path) -> None:
    from data_platform.core.postgres import connect

    name = f"raw/{SNAPSHOT.path()}/slow.csv"
    opened, release = threading.Event(), threading.Event()
    slow = SourceFile(
        name, 0, None, lambda: _BlockingStream(csv_bytes(HEADER, sample_rows(3)), opened, release)
    )
    write_csv(snapshot_dir(tmp_path) / "fast.csv", sample_rows(5, 100))
    [fast] = local_sources(tmp_path)
    conns = [connect(pg_url) for _ in range(3)]
    ensure_table(conns[0], preset)
    errors: list[BaseException] = []

    def run(conn, files) -> None:
        try:
            load_snapshot(conn, preset, SNAPSHOT, files)
        except BaseException as exc:
            errors.append(exc)

    first = threading.Thread(target=run, args=(conns[0], [slow]))
    second = threading.Thread(target=run, args=(conns[1], [fast]))
    try:
        first.start()
        assert opened.wait(30)
        second.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with conns[2].cursor() as cur:
                cur.execute(ADVISORY_LOCKS + " AND NOT granted")
                waiting = cur.fetchone()[0]
            conns[2].rollback()
            if waiting:
                break
            time.sleep(0.02)
        assert waiting == 1
        assert second.is_alive()
    finally:
        release.set()
        first.join(30)
        second.join(30)
    assert errors == []
    assert table_rows(conns[2], preset) == expected_rows(sample_rows(5, 100))
    for conn in conns:
        conn.close()


_LOADER = """
import sys, time
from pathlib import Path
from data_platform.core.postgres import connect
from data_platform.silver.loader import load_snapshot
from data_platform.silver.presets import load_preset
from data_platform.silver.sources import SourceFile, group_by_snapshot, local_sources

class Slow:  # 64 KiB per read, 50 ms apart: the COPY stays open for seconds
    def __init__(self, path): self.file = open(path, "rb")
    def read(self, size=-1): time.sleep(0.05); return self.file.read(min(size, 65536))
    def close(self): self.file.close()
    def __enter__(self): return self
    def __exit__(self, *exc): self.close()

url, folder, slow = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "slow"
[(snapshot, files)] = group_by_snapshot(local_sources(folder)).items()
if slow:
    files = [SourceFile(f.name, f.size, None, lambda f=f: Slow(f.local_path)) for f in files]
extra = [connect(url)]  # two COPY streams
load_snapshot(connect(url), load_preset("silver_stage_1_main"), snapshot, files,
              copy_connections=extra)
"""
_COPYING = "SELECT pid, tuples_processed FROM pg_stat_progress_copy WHERE datname = %s"
_WAITING_ON_LOCK = (
    "SELECT pid FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
)


def _poll(conn, query: str, args: tuple, until, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with conn.cursor() as cur:
            cur.execute(query, args)
            rows = cur.fetchall()
        conn.rollback()
        if until(rows):
            return rows
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting on: {query}")


@pytest.mark.parametrize("moment", ["mid_copy", "in_swap"])
def test_kill_9_of_a_parallel_load_leaves_the_old_snapshot_whole(
    moment: str, conn, preset, pg_url: str, tmp_path: Path
) -> None:
    """kill -9 while both COPY streams run, or while the swap waits for the table's lock: the old
    snapshot stays whole, and the next load of the snapshot leaves no staging table behind."""
    import signal
    import subprocess
    import sys

    from data_platform.core.postgres import connect

    before = loaded_before(conn, preset, tmp_path, sample_rows(50))
    write_csv(snapshot_dir(tmp_path / "new") / "big.csv", sample_rows(50_000))
    dbname = conn.get_dsn_parameters()["dbname"]
    reader = connect(pg_url)
    if moment == "in_swap":  # an open transaction holds the table: the swap must wait
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM silver_stage_1_main")
    mode = "slow" if moment == "mid_copy" else "fast"
    loader = subprocess.Popen(
        [sys.executable, "-c", _LOADER, pg_url, str(tmp_path / "new"), mode],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if moment == "mid_copy":
            streams = _poll(
                conn, _COPYING, (dbname,), lambda rows: len(rows) == 2 and min(r[1] for r in rows)
            )
            backends = [pid for pid, _ in streams]
        else:
            backends = [pid for (pid,) in _poll(conn, _WAITING_ON_LOCK, (dbname,), bool)]
        assert loader.poll() is None  # still loading: the kill lands where we want it
        loader.send_signal(signal.SIGKILL)
    finally:
        loader.kill()
        loader.wait(30)
        loader.stderr.close()
        reader.rollback()
        reader.close()
    assert loader.returncode == -signal.SIGKILL
    for backend in backends:
        _poll(conn, "SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,), lambda r: not r)

    # A backend leaves pg_stat_activity a moment before its session locks are released.
    _poll(conn, ADVISORY_LOCKS, (), lambda rows: rows[0][0] == 0, timeout=10)
    assert table_rows(conn, preset) == before
    leftovers = [r for r in relations(conn) if r.endswith("_new")]
    assert len(relations(conn)) - len(leftovers) == 2  # the parent and the old leaf
    assert load_dir(conn, preset, tmp_path / "new").rows == 50_000
    assert len(relations(conn)) == 2  # the staging table the killed load left is gone


def test_a_forgotten_open_transaction_fails_the_swap_naming_it(pg_url, conn, preset, tmp_path):
    from data_platform.core.postgres import connect

    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    write_csv(snapshot_dir(tmp_path / "new") / "new.csv", sample_rows(8))
    reader = connect(pg_url)
    try:
        with reader.cursor() as cur:
            cur.execute("SELECT count(*) FROM silver_stage_1_main")  # and never commit
            cur.execute("SELECT pg_backend_pid()")
            reader_pid = cur.fetchone()[0]
        with pytest.raises(SilverLoadError) as error:
            load_dir(conn, preset, tmp_path / "new", lock_timeout_seconds=0.3)
        assert f"pid {reader_pid} " in str(error.value)
        assert "stayed locked by other sessions for 0.3 s" in str(error.value)
    finally:
        reader.close()
    assert table_rows(conn, preset) == before
    assert len(relations(conn)) == 2
    assert load_dir(conn, preset, tmp_path / "new").rows == 8


def test_parquet_value_error_names_the_row_across_batches(conn, preset, tmp_path: Path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    rows = sample_rows(250)
    rows[149][4] = "123456789012.5"  # does not fit numeric(10,2)
    write_parquet(snapshot_dir(tmp_path / "new") / "p.parquet", rows, row_group_size=40)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "new", chunk_rows=32)
    message = str(error.value)
    assert "p.parquet: row 150, column area_m2" in message
    assert "numeric_value_out_of_range" in message and "123456789012" not in message
    assert table_rows(conn, preset) == before


def test_no_files_is_not_an_empty_snapshot(conn, preset, tmp_path: Path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    with pytest.raises(SilverLoadError, match="no files for snapshot"):
        load_snapshot(conn, preset, SNAPSHOT, [])
    assert table_rows(conn, preset) == before


@pytest.fixture
def copy_conns(pg_url: str):
    from data_platform.core.postgres import connect

    extra = [connect(pg_url) for _ in range(2)]
    yield extra
    for conn in extra:
        conn.close()


def _multiline_rows(count: int) -> list[list[str]]:
    rows = sample_rows(count)
    for i, row in enumerate(rows):
        if i % 3 == 0:
            row[1] = f'{row[1]}\n"둘째 줄"\n{"x" * (i % 50)}'  # quoted line breaks and quotes
    return rows


def test_parallel_streams_load_quoted_line_breaks_across_split_points_exactly(
    conn, copy_conns, preset, tmp_path: Path
) -> None:
    rows = _multiline_rows(40_000)  # ~6 MiB: several pieces per stream
    write_csv(snapshot_dir(tmp_path) / "multi.csv", rows)
    result = load_dir(conn, preset, tmp_path, copy_connections=copy_conns)
    assert result.rows == 40_000
    assert table_rows(conn, preset) == expected_rows(rows)


def test_parallel_parquet_loads_every_row_group(conn, copy_conns, preset, tmp_path) -> None:
    rows = sample_rows(5_000)
    write_parquet(snapshot_dir(tmp_path) / "p.parquet", rows, row_group_size=300)
    assert (
        load_dir(conn, preset, tmp_path, copy_connections=copy_conns, chunk_rows=250).rows == 5_000
    )
    assert table_rows(conn, preset) == expected_rows(rows)


def test_parquet_text_with_copy_format_specials_loads_exactly(conn, preset, tmp_path) -> None:
    """Parquet that binary COPY cannot take (here: dates as strings) goes in COPY's text format:
    tabs, line breaks, backslashes (also a literal `\\N`), carriage returns, empty strings and
    NULLs must arrive as they were, in a batch among plain ones and in a dictionary-encoded
    (categorical) column."""
    import polars as pl

    specials = ["tab\there", "two\nlines", "back\\slash", "\\N", "cr\r\nlf", "", None]
    rows: list[list[str | None]] = [list(r) for r in sample_rows(300)]
    for i in range(100, 200):
        rows[i][2] = specials[i % len(specials)]
    rows[250][1] = "동\t\\"
    path = snapshot_dir(tmp_path) / "p.parquet"
    write_parquet(
        path, rows, row_group_size=50, casts={"dong": pl.Categorical, "contract_date": pl.String}
    )
    assert pl.read_parquet_schema(path)["dong"] == pl.Categorical
    with open_copy_input(*local_sources(tmp_path), preset, {}, 50) as data:
        assert data.copy_format == "text"
    assert load_dir(conn, preset, tmp_path, chunk_rows=50).rows == 300
    loaded = {int(r[4]): (r[5], r[6]) for r in table_rows(conn, preset)}
    assert loaded == {int(r[0]): (r[1], r[2]) for r in rows}
    assert [loaded[i][1] for i in range(103, 107)] == ["", None, "tab\there", "two\nlines"]
    assert loaded[250][0] == "동\t\\"


def test_a_bad_value_in_a_later_stream_names_its_file_row(
    conn, copy_conns, preset, tmp_path: Path
) -> None:
    """(Rows with quoted line breaks before the bad one can shift Postgres' own line count by a
    few lines, with one stream as with several; see the README.)"""
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    rows = sample_rows(60_000)  # ~7 MiB: the pieces alternate between the streams
    rows[51_000][5] = "not-a-floor"
    write_csv(snapshot_dir(tmp_path / "new") / "bad.csv", rows)
    with pytest.raises(SilverLoadError) as error:
        load_dir(conn, preset, tmp_path / "new", copy_connections=copy_conns)
    assert "bad.csv: data row 51,001 (line 51,002), column floor" in str(error.value)
    assert table_rows(conn, preset) == before
    assert len(relations(conn)) == 2  # the staging table went with the failure


def test_a_header_only_file_does_not_empty_the_snapshot(conn, preset, tmp_path: Path) -> None:
    before = loaded_before(conn, preset, tmp_path, sample_rows(5))
    write_csv(snapshot_dir(tmp_path / "new") / "empty.csv", [])
    with pytest.raises(SilverLoadError, match="no data rows"):
        load_dir(conn, preset, tmp_path / "new")
    assert table_rows(conn, preset) == before
    assert load_dir(conn, preset, tmp_path / "new", allow_empty=True).rows == 0
    assert table_rows(conn, preset) == []


def test_tables_sharing_a_long_name_start_get_their_own_leaves(conn, preset, tmp_path) -> None:
    shared = "서울특별시강남구아파트실거래가"  # 15 Hangul: more than a leaf name keeps
    first = dataclasses.replace(preset, name="first", table=shared + "_매매")
    second = dataclasses.replace(preset, name="second", table=shared + "_전세")
    write_csv(snapshot_dir(tmp_path) / "a.csv", sample_rows(7))
    assert load_dir(conn, first, tmp_path).rows == 7
    assert load_dir(conn, second, tmp_path).rows == 7
    assert load_dir(conn, first, tmp_path).rows == 7  # the reload finds its own leaf
    assert table_rows(conn, first) == table_rows(conn, second) == expected_rows(sample_rows(7))
    leaves = [r for r in relations(conn) if r.startswith("서울")]
    assert len(leaves) == 4  # two parents, two leaves


def test_a_decomposed_korean_folder_is_the_same_snapshot(conn, preset, tmp_path: Path) -> None:
    """macOS writes NFD names: the same snapshot, replaced, not a second one beside it."""
    import unicodedata

    nfd = tmp_path / unicodedata.normalize("NFD", SNAPSHOT.path())
    nfd.mkdir(parents=True)
    write_csv(nfd / "mac.csv", sample_rows(4))
    write_csv(snapshot_dir(tmp_path) / "linux.csv", sample_rows(3, 10))
    [(snapshot, files)] = group_by_snapshot(local_sources(tmp_path)).items()
    assert snapshot == SNAPSHOT and len(files) == 2
    assert load_snapshot(conn, preset, snapshot, files).rows == 7
    assert len(relations(conn)) == 2


def test_a_run_finds_files_uploaded_under_decomposed_names(tmp_path: Path) -> None:
    import unicodedata

    from data_platform.core.objectstore import LocalObjectStore
    from data_platform.silver.discovery import list_partition_files

    store = LocalObjectStore(tmp_path)
    store.put(f"ds/{unicodedata.normalize('NFD', SNAPSHOT.path())}/mac.csv", b"x\n")
    store.put(f"ds/{SNAPSHOT.path()}/linux.csv", b"x\n")
    partition = list_partition_files(store, "ds", SNAPSHOT)
    assert sorted(info.key.rsplit("/", 1)[1] for info in partition.files) == [
        "linux.csv",
        "mac.csv",
    ]
