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
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PostgresError) as raised:
        connect(settings)
    assert "cannot connect" in str(raised.value)
    # libpq quotes the whole URL when it cannot parse it: the error path carries the password.
    with pytest.raises(PostgresError) as unparsable:
        connect(f"postgresql://alice:{SECRET}@[::1/db")
    assert "IPv6" in str(unparsable.value)
    for message in (str(raised.value), str(unparsable.value)):
        assert SECRET not in message
    assert all(SECRET not in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "text",
    [
        f"postgresql://u:{SECRET}@h/db password={SECRET}",
        "postgresql://u:first@second@h:5432/db",  # an unencoded "@" inside the password
        "see postgres://u:first@second@h/db and more",
    ],
)
def test_mask_url_hides_every_part_of_the_password(text: str) -> None:
    masked = mask_url(text)
    for part in (SECRET, "first", "second"):
        assert part not in masked
    assert "***" in masked


def test_url_keeps_every_libpq_parameter() -> None:
    url = (
        "postgresql://etl@/sales?host=/var/run/postgresql&sslmode=verify-full"
        "&sslrootcert=/etc/rds-ca.pem&options=-c%20search_path%3Dsilver"
        "&target_session_attrs=read-write"
    )
    settings = PostgresSettings.from_url(url)
    assert settings.host == "/var/run/postgresql"  # a socket folder, not TCP
    kwargs = settings.connect_kwargs()
    assert kwargs["sslrootcert"] == "/etc/rds-ca.pem"
    assert kwargs["options"] == "-c search_path=silver"
    assert kwargs["target_session_attrs"] == "read-write"
    assert PostgresSettings.from_url(settings.url(with_password=True)) == settings


def test_url_options_reach_the_server(pg_url: str) -> None:
    url = f"{pg_url}?options=-c%20search_path%3Dfrom_url"
    with connection(url) as conn, conn.cursor() as cur:
        cur.execute("SHOW search_path")
        assert cur.fetchone()[0] == "from_url"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("postgresql://u@h:notaport/db", "not a number"),
        ("postgresql://u@h:99999/db", "not a number"),
        ("postgresql://u@[::1/db", "IPv6"),
        (f"postgresql://u:{SECRET}@x@h/db", "%40"),
        ("mysql://u@h/db", "not a Postgres URL"),
    ],
)
def test_bad_urls_are_one_clear_error(url: str, said: str) -> None:
    with pytest.raises(PostgresError, match=said) as raised:
        PostgresSettings.from_url(url)
    assert SECRET not in str(raised.value)


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


def test_a_lost_connection_is_reported_not_hidden_by_the_rollback(pg_url: str) -> None:
    """The server ends the session mid-transaction: the error that says so comes out, not the
    `connection already closed` of a rollback attempted on the dead connection."""
    import psycopg2

    conn = connect(pg_url)
    with connection(pg_url) as admin, admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (conn.get_backend_pid(),))
        assert cur.fetchone() == (True,)
    with pytest.raises(psycopg2.OperationalError) as caught, transaction(conn):
        conn.cursor().execute("SELECT 1")
    assert conn.closed
    assert "terminat" in str(caught.value) or "closed the connection" in str(caught.value)
