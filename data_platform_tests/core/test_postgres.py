import logging

import pytest

from data_platform.core.postgres import (
    PostgresError,
    PostgresSettings,
    connect,
    connection,
    mask_url,
    qualified,
    table_exists,
    transaction,
)

SECRET = "s3cr3t-Pa55"


def test_url_round_trip_and_rds_default() -> None:
    settings = PostgresSettings.from_url(
        f"postgresql://alice:{SECRET}@db.example:6543/sales", rds=True
    )
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "db.example",
        6543,
        "sales",
        "alice",
    )
    assert settings.effective_sslmode == "require"
    assert settings.connect_kwargs()["sslmode"] == "require"
    assert PostgresSettings().effective_sslmode == "prefer"
    assert PostgresSettings.from_url(settings.url(with_password=True)).password == SECRET


def test_env_settings_read_rds_names() -> None:
    env = {
        "RDS_HOST": "rds.example",
        "RDS_PORT": "5433",
        "RDS_DB": "prod",
        "RDS_USER": "etl",
        "RDS_PASSWORD": SECRET,
    }
    settings = PostgresSettings.from_env(env, prefix="RDS_", rds=True)
    assert (settings.host, settings.port, settings.dbname, settings.user) == (
        "rds.example",
        5433,
        "prod",
        "etl",
    )
    assert settings.password == SECRET


def test_password_never_in_repr_url_or_error(caplog: pytest.LogCaptureFixture) -> None:
    settings = PostgresSettings(host="127.0.0.1", port=1, password=SECRET, connect_timeout=2)
    assert SECRET not in repr(settings)
    assert SECRET not in settings.url()
    assert SECRET not in mask_url(f"postgresql://u:{SECRET}@h/db password={SECRET}")
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PostgresError) as raised:
        connect(settings)
    assert SECRET not in str(raised.value)
    assert "cannot connect" in str(raised.value)
    assert all(SECRET not in record.getMessage() for record in caplog.records)


def test_transaction_rolls_back_on_error(pg_url: str) -> None:
    with connection(pg_url) as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (x int)")
    conn = connect(pg_url)
    try:
        with pytest.raises(RuntimeError), transaction(conn), conn.cursor() as cur:
            cur.execute("INSERT INTO t VALUES (1)")
            raise RuntimeError("boom")
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM t")
            assert cur.fetchone()[0] == 0
        assert table_exists(conn, "public", "t")
        assert not table_exists(conn, "public", "missing")
        assert qualified("a", "b").as_string(conn) == '"a"."b"'
    finally:
        conn.close()
