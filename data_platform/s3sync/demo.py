"""Demo step: upload a sample tree with the CLI, re-sync it (a no-op), download it, compare."""

from __future__ import annotations

import filecmp
import os
from pathlib import Path

from data_platform.demo import DemoContext, DemoFailure

SAMPLE_FILES = {
    "readme.txt": b"data_platform demo\n",
    "year=2024/month=05/region=seoul/prices.csv": b"item,price\nbolt,120\nnut,80\n" * 200,
    "year=2024/month=06/region=busan/prices.csv": b"item,price\nbolt,125\nnut,82\n" * 200,
    "images/logo.bin": os.urandom(3 * 1024 * 1024),
    "한글/메모.txt": "강남구 서초구\n".encode(),
}


def write_sample_tree(root: Path) -> int:
    for relative, content in SAMPLE_FILES.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return len(SAMPLE_FILES)


def trees_identical(left: Path, right: Path) -> bool:
    left_files = sorted(p.relative_to(left) for p in left.rglob("*") if p.is_file())
    right_files = sorted(p.relative_to(right) for p in right.rglob("*") if p.is_file())
    return left_files == right_files and all(
        filecmp.cmp(left / rel, right / rel, shallow=False) for rel in left_files
    )


def run_demo(ctx: DemoContext) -> None:
    ctx.s3_client().create_bucket(Bucket=ctx.bucket)
    source, restored = ctx.workdir / "sample", ctx.workdir / "restored"
    count = write_sample_tree(source)
    ctx.say(f"wrote a sample tree of {count} files to {source}")
    location = ["--bucket", ctx.bucket, "--prefix", "samples", "--endpoint-url", ctx.s3_endpoint]
    ctx.run_cli("s3", "upload", "--local-dir", str(source), *location)
    ctx.run_cli("s3", "upload", "--local-dir", str(source), *location)  # every file skipped
    ctx.run_cli("s3", "download", "--local-dir", str(restored), *location)
    if not trees_identical(source, restored):
        raise DemoFailure(f"downloaded tree {restored} differs from {source}")
    ctx.say(f"verified: {restored} is byte-for-byte identical to {source}")
