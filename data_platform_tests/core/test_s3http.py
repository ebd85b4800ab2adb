"""The lean S3 client against the moto server; its signatures against botocore's signer."""

from __future__ import annotations

import base64
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from data_platform.core.aws import AwsSettings
from data_platform.core.s3http import Endpoint, S3ConnectionError, S3Error, S3HttpClient
from data_platform.core.s3http_auth import s3http_client
from data_platform.core.sigv4 import Credentials, SigV4Signer, canonical_query, quote_path
from data_platform_tests.faulty_proxy import Faults, FaultyProxy

KEYS = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "session-token")
ODD_KEY = "d/한글 폴더/a+b %25 c=d&e.txt"


def lean(endpoint_url: str) -> S3HttpClient:
    static = Credentials("testing", "testing")
    return S3HttpClient(Endpoint.parse(endpoint_url, path_style=True), "us-east-1", lambda: static)


@pytest.mark.parametrize(
    ("method", "key", "query", "headers"),
    [
        ("GET", "plain.txt", {}, {"Range": "bytes=0-9", "If-Match": '"abc"'}),
        ("PUT", ODD_KEY, {}, {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==", "x-amz-meta-md5": "f"}),
        ("PUT", "big.bin", {"partNumber": "3", "uploadId": "a/b+c=="}, {}),
        ("GET", "", {"list-type": "2", "prefix": "d/한 글/", "encoding-type": "url"}, {}),
        ("POST", "big.bin", {"uploads": ""}, {"Content-Type": "text/csv"}),
    ],
)
def test_signature_equals_botocores(method: str, key: str, query: dict, headers: dict) -> None:
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config
    from botocore.credentials import Credentials as BotoCredentials

    host, path = "s3.eu-central-1.amazonaws.com", quote_path(f"/bucket-1/{key}")
    url = f"https://{host}{path}" + (f"?{canonical_query(query)}" if query else "")
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=b"body")
    request.context["client_config"] = Config(s3={"payload_signing_enabled": False})
    credentials = BotoCredentials(KEYS.access_key, KEYS.secret_key, KEYS.token)
    S3SigV4Auth(credentials, "s3", "eu-central-1").add_auth(request)
    # botocore signs at the current second: sign ours at the same one
    when = datetime.strptime(request.headers["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    ours = SigV4Signer("eu-central-1").sign(
        method, host, path, canonical_query(query), dict(headers), KEYS, now=when
    )
    assert ours["authorization"] == request.headers["Authorization"]


def test_objects_round_trip_with_metadata_and_odd_keys(s3_endpoint: str, bucket: str) -> None:
    client = lean(s3_endpoint)
    data = os.urandom(70_000)
    md5 = hashlib.md5(data)
    put = client.put_object(
        Bucket=bucket,
        Key=ODD_KEY,
        Body=data,
        ContentMD5=base64.b64encode(md5.digest()).decode(),
        ContentType="text/plain",
        Metadata={"md5": md5.hexdigest()},
    )
    assert put["ETag"] == f'"{md5.hexdigest()}"'
    got = client.get_object(Bucket=bucket, Key=ODD_KEY, IfMatch=put["ETag"])
    assert got["Body"].read() == data
    assert got["Metadata"] == {"md5": md5.hexdigest()}
    assert got["LastModified"].tzinfo is not None
    ranged = client.get_object(Bucket=bucket, Key=ODD_KEY, Range="bytes=10-19")
    assert ranged["Body"].read() == data[10:20]
    assert client.head_object(Bucket=bucket, Key=ODD_KEY)["ContentLength"] == len(data)
    [listed] = client.list_objects_v2(Bucket=bucket, Prefix="d/")["Contents"]
    assert (listed["Key"], listed["Size"], listed["ETag"]) == (ODD_KEY, len(data), put["ETag"])


def test_listing_pages_through_every_key(s3_endpoint: str, bucket: str) -> None:
    client = lean(s3_endpoint)
    for index in range(5):
        client.put_object(Bucket=bucket, Key=f"p/{index}", Body=b"x")
    pages = list(
        client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="p/", MaxKeys=2)
    )
    assert len(pages) == 3
    assert [item["Key"] for page in pages for item in page["Contents"]] == [
        f"p/{i}" for i in range(5)
    ]


def test_errors_carry_s3s_codes(s3_endpoint: str, bucket: str) -> None:
    client = lean(s3_endpoint)
    client.put_object(Bucket=bucket, Key="k", Body=b"v")
    cases = [
        (lambda: client.get_object(Bucket=bucket, Key="missing"), "NoSuchKey", 404),
        (lambda: client.head_object(Bucket=bucket, Key="missing"), "404", 404),
        (
            lambda: client.get_object(Bucket=bucket, Key="k", IfMatch='"0"'),
            "PreconditionFailed",
            412,
        ),
        (lambda: client.list_objects_v2(Bucket="no-such-bucket-lean"), "NoSuchBucket", 404),
    ]
    for call, code, status in cases:
        with pytest.raises(S3Error) as caught:
            call()
        assert caught.value.response["Error"]["Code"] == code
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status


def test_refused_connection_is_one_error_after_short_retries() -> None:
    started = time.monotonic()
    with pytest.raises(S3ConnectionError, match=r"could not reach http://127\.0\.0\.1:9"):
        lean("http://127.0.0.1:9").list_objects_v2(Bucket="b")
    assert time.monotonic() - started < 10


def test_multipart_upload_complete_list_and_abort(s3_endpoint: str, bucket: str) -> None:
    client = lean(s3_endpoint)
    parts = [os.urandom(5 * 2**20), b"tail"]
    upload = client.create_multipart_upload(Bucket=bucket, Key="mp", Metadata={"md5": "x"})
    etags = [
        client.upload_part(
            Bucket=bucket,
            Key="mp",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=part,
            ContentMD5=base64.b64encode(hashlib.md5(part).digest()).decode(),
        )["ETag"]
        for number, part in enumerate(parts, start=1)
    ]
    listed = client.list_multipart_uploads(Bucket=bucket, Prefix="m")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("mp", upload["UploadId"])]
    done = [{"ETag": etag, "PartNumber": n} for n, etag in enumerate(etags, start=1)]
    client.complete_multipart_upload(
        Bucket=bucket, Key="mp", UploadId=upload["UploadId"], MultipartUpload={"Parts": done}
    )
    assert client.get_object(Bucket=bucket, Key="mp")["Body"].read() == b"".join(parts)
    assert client.head_object(Bucket=bucket, Key="mp", PartNumber=1)["ContentLength"] == 5 * 2**20

    abandoned = client.create_multipart_upload(Bucket=bucket, Key="gone")["UploadId"]
    client.abort_multipart_upload(Bucket=bucket, Key="gone", UploadId=abandoned)
    assert "Uploads" not in client.list_multipart_uploads(Bucket=bucket)


def test_a_body_cut_off_leaves_the_next_request_a_working_connection(
    s3_endpoint: str, bucket: str
) -> None:
    data = os.urandom(200_000)
    lean(s3_endpoint).put_object(Bucket=bucket, Key="cut", Body=data)
    with FaultyProxy(s3_endpoint, Faults(cut_bodies=1)) as proxy:
        client = lean(proxy.endpoint_url)
        first = client.get_object(Bucket=bucket, Key="cut")["Body"]
        assert len(first.read(len(data))) < len(data)
        assert client.get_object(Bucket=bucket, Key="cut")["Body"].read() == data


def test_environment_keys_need_no_botocore(aws_env: dict[str, str], monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-value")
    client = s3http_client(AwsSettings(region="eu-west-1"), prompt=None)
    assert (client.endpoint.host, client.region) == ("127.0.0.1:9", "eu-west-1")
    credentials = client._credentials()
    assert (credentials.access_key, credentials.token) == ("testing", "token-value")
    assert "testing" not in repr(client) and "token-value" not in repr(credentials)


def test_profiles_resolve_through_botocore(
    aws_env: dict[str, str], monkeypatch, tmp_path: Path
) -> None:
    Path(aws_env["AWS_SHARED_CREDENTIALS_FILE"]).write_text(
        "[analyst]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n"
    )
    Path(aws_env["AWS_CONFIG_FILE"]).write_text("[profile analyst]\nregion = ap-northeast-2\n")
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # the environment's region beats the profile's
    client = s3http_client(AwsSettings(profile="analyst"), prompt=None)
    assert client._credentials().access_key == "AKIDPROFILE"
    assert client.region == "ap-northeast-2"
    assert client.endpoint.host.endswith(".amazonaws.com") and not client.endpoint.path_style
