import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg2

from data_platform.core.postgres import PostgresSettings
from data_platform.definitions import defs

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_definitions_load_with_shared_resources() -> None:
    dg.Definitions.validate_loadable(defs)
    assert {"postgres", "aws", "raw_store"} <= set(defs.resources)


def test_dagster_validate_with_instance_on_postgres(pg_url: str, tmp_path: Path) -> None:
    """`dagster definitions validate` passes with dagster.yaml's Postgres storage."""
    settings = PostgresSettings.from_url(pg_url)
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO_ROOT / "dagster.yaml").read_text())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": settings.host,
        "DAGSTER_PG_PORT": str(settings.port),
        "DAGSTER_PG_DB": settings.dbname,
        "DAGSTER_PG_USER": settings.user,
        "DAGSTER_PG_PASSWORD": settings.password or "",
    }
    dagster = str(Path(sys.executable).parent / "dagster")
    done = subprocess.run(
        [dagster, "definitions", "validate", "-w", "workspace.yaml"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All code locations passed validation" in done.stdout + done.stderr
    with psycopg2.connect(pg_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE tablename IN ('runs', 'event_logs')")
        assert cur.fetchone()[0] == 2
