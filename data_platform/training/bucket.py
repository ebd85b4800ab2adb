"""The seed's bucket checklist as code: create, AES-256 default encryption with a bucket key,
all four public-access blocks, and a Glacier lifecycle rule on the sample prefix.

Each setting is read first and written only when it differs, so a second run changes nothing.
Other lifecycle rules on the bucket are kept; ours is found by its Id.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Any

from data_platform.training.errors import TrainingError

LIFECYCLE_RULE_ID = "ArchiveOldTrainingData"
ENCRYPTION = {
    "Rules": [
        {
            "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
            "BucketKeyEnabled": True,
        }
    ]
}
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
_MISSING_CODES = {
    "NoSuchBucket",
    "404",
    "NotFound",
    "ServerSideEncryptionConfigurationNotFoundError",
    "NoSuchPublicAccessBlockConfiguration",
    "NoSuchLifecycleConfiguration",
}


# S3's rules for general purpose buckets (docs.aws.amazon.com/AmazonS3/latest/userguide/
# bucketnamingrules.html); checked here so a bad name is one line, not botocore's traceback.
_BUCKET_CHARS = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> None:
    """Raise a TrainingError saying which of S3's bucket naming rules `name` breaks."""
    problem = None
    if not _BUCKET_CHARS.match(name):
        problem = (
            "3-63 characters of lowercase letters, digits, '.' and '-', starting and ending "
            "with a letter or digit"
        )
    elif ".." in name:
        problem = "no two adjacent periods"
    elif _is_ip_address(name):
        problem = "not an IP address"
    elif name.startswith(_RESERVED_PREFIXES) or name.endswith(_RESERVED_SUFFIXES):
        problem = (
            f"no reserved prefix ({', '.join(_RESERVED_PREFIXES)}) or suffix "
            f"({', '.join(_RESERVED_SUFFIXES)})"
        )
    if problem:
        raise TrainingError(f"bucket name {name!r} is not valid for S3: it must have {problem}")


def _is_ip_address(name: str) -> bool:
    try:
        ipaddress.IPv4Address(name)
    except ValueError:
        return False
    return True


@dataclass
class BootstrapReport:
    bucket: str
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # made or planned
    dry_run: bool = False

    def summary(self) -> str:
        if not self.calls:
            return f"s3://{self.bucket} already matches: nothing changed"
        verb = "would make" if self.dry_run else "made"
        return f"s3://{self.bucket}: {verb} {len(self.calls)} changes"


def lifecycle_rule(prefix: str, glacier_after_days: int) -> dict[str, Any]:
    return {
        "ID": LIFECYCLE_RULE_ID,
        "Status": "Enabled",
        "Filter": {"Prefix": prefix},
        "Transitions": [{"Days": glacier_after_days, "StorageClass": "GLACIER"}],
    }


def bootstrap_bucket(
    client: Any,
    bucket: str,
    *,
    region: str | None = None,
    prefix: str = "training/",
    glacier_after_days: int = 90,
    dry_run: bool = False,
) -> BootstrapReport:
    if glacier_after_days < 1:
        raise TrainingError("--glacier-after-days must be at least 1")
    check_bucket_name(bucket)
    report = BootstrapReport(bucket, dry_run=dry_run)

    def call(name: str, **params: Any) -> None:
        report.calls.append((name, params))
        if not dry_run:
            _checked(lambda: getattr(client, name)(**params), bucket, name)

    exists = _read(lambda: client.head_bucket(Bucket=bucket), bucket) is not None
    if not exists:
        params: dict[str, Any] = {"Bucket": bucket}
        region = region or client.meta.region_name
        if region and region != "us-east-1":  # us-east-1 refuses an explicit constraint
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        call("create_bucket", **params)

    encryption = _read(lambda: client.get_bucket_encryption(Bucket=bucket), bucket, exists)
    current = (encryption or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    if [_encryption_rule(rule) for rule in current] != [_encryption_rule(ENCRYPTION["Rules"][0])]:
        call("put_bucket_encryption", Bucket=bucket, ServerSideEncryptionConfiguration=ENCRYPTION)

    block = _read(lambda: client.get_public_access_block(Bucket=bucket), bucket, exists)
    if (block or {}).get("PublicAccessBlockConfiguration") != PUBLIC_ACCESS_BLOCK:
        call(
            "put_public_access_block",
            Bucket=bucket,
            PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK,
        )

    lifecycle = _read(
        lambda: client.get_bucket_lifecycle_configuration(Bucket=bucket), bucket, exists
    )
    rules = (lifecycle or {}).get("Rules", [])
    ours = lifecycle_rule(prefix, glacier_after_days)
    others = [rule for rule in rules if rule.get("ID") != LIFECYCLE_RULE_ID]
    if [_lifecycle_rule(r) for r in rules if r.get("ID") == LIFECYCLE_RULE_ID] != [
        _lifecycle_rule(ours)
    ]:
        call(
            "put_bucket_lifecycle_configuration",
            Bucket=bucket,
            LifecycleConfiguration={"Rules": [*others, ours]},
        )
    return report


def _encryption_rule(rule: dict[str, Any]) -> tuple[Any, ...]:
    default = rule.get("ApplyServerSideEncryptionByDefault", {})
    return (default.get("SSEAlgorithm"), bool(rule.get("BucketKeyEnabled", False)))


def _lifecycle_rule(rule: dict[str, Any]) -> tuple[Any, ...]:
    """The parts we set, in a form that ignores how a server echoes defaults back."""
    prefix = rule.get("Filter", {}).get("Prefix", rule.get("Prefix"))
    transitions = tuple((t.get("Days"), t.get("StorageClass")) for t in rule.get("Transitions", []))
    return (rule.get("Status"), prefix, transitions)


def _read(request: Any, bucket: str, exists: bool = True) -> dict[str, Any] | None:
    """The response, or None when the bucket or the setting does not exist."""
    if not exists:
        return None
    from botocore.exceptions import ClientError

    try:
        return request()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _MISSING_CODES:
            return None
        raise TrainingError(f"reading the settings of s3://{bucket} failed: {code} {exc}") from None


def _checked(request: Any, bucket: str, name: str) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        request()
    except (ClientError, BotoCoreError) as exc:
        raise TrainingError(
            f"{name} on s3://{bucket} failed: {exc}; nothing after it ran"
        ) from None
