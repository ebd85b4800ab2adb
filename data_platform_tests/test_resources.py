import dagster as dg
import pytest

from data_platform.core.objectstore import LocalObjectStore, S3ObjectStore
from data_platform.resources import AwsSessionResource, ObjectStoreResource, PostgresResource

SECRET = "hunter2-not-logged"


def test_postgres_resource_connects_per_use(pg_url: str) -> None:
    resource = PostgresResource(url=pg_url)
    with resource.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE t (x int)")
        cur.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(RuntimeError), resource.connect() as conn, conn.cursor() as cur:
        cur.execute("INSERT INTO t VALUES (2)")
        raise RuntimeError("roll back")
    with resource.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT array_agg(x) FROM t")
        assert cur.fetchone()[0] == [1]
    assert conn.closed


def test_postgres_resource_fields_rds_and_masking() -> None:
    resource = PostgresResource(host="db.example", dbname="prod", password=SECRET, rds=True)
    settings = resource.settings()
    assert settings.effective_sslmode == "require"
    assert SECRET not in repr(settings)
    assert SECRET not in settings.url()


def test_object_store_resource_s3_and_local(
    aws_env, s3_endpoint: str, bucket: str, tmp_path
) -> None:
    aws = AwsSessionResource(endpoint_url=s3_endpoint, region="us-east-1")
    s3 = ObjectStoreResource(url=f"s3://{bucket}/raw", aws=aws).store()
    assert isinstance(s3, S3ObjectStore)
    s3.put("a/b.txt", b"hello")
    assert [info.key for info in s3.list()] == ["a/b.txt"]
    assert aws.client("s3").get_object(Bucket=bucket, Key="raw/a/b.txt")["Body"].read() == b"hello"

    local = ObjectStoreResource(url=str(tmp_path / "store"), aws=aws).store()
    assert isinstance(local, LocalObjectStore)
    local.put("x.txt", b"1")
    assert local.get("x.txt") == b"1"


def test_resources_used_by_an_asset(pg_url: str, aws_env, s3_endpoint: str, bucket: str) -> None:
    @dg.asset
    def probe(postgres: PostgresResource, raw_store: ObjectStoreResource) -> int:
        raw_store.store().put("probe.txt", b"x")
        with postgres.connect() as conn, conn.cursor() as cur:
            cur.execute("SELECT 41 + 1")
            return cur.fetchone()[0]

    aws = AwsSessionResource(endpoint_url=s3_endpoint)
    result = dg.materialize(
        [probe],
        resources={
            "postgres": PostgresResource(url=pg_url),
            "raw_store": ObjectStoreResource(url=f"s3://{bucket}", aws=aws),
        },
    )
    assert result.success
    assert result.output_for_node("probe") == 42


def test_postgres_resource_repr_hides_the_password() -> None:
    resource = PostgresResource(url="postgresql://etl:p4ss@w0rd-tail@db/x", password=SECRET)
    for shown in (repr(resource), str(resource)):
        for part in ("p4ss", "w0rd-tail", SECRET):
            assert part not in shown
