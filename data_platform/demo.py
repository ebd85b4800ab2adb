"""The demo: each domain contributes one step that runs its real jobs against the dev stack.

Steps run in order; each prints what it did and raises DemoFailure when a check does not hold.
A new capability joins the demo by adding its `module:function` to DEMO_STEPS.
"""

from __future__ import annotations

import importlib
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEMO_STEPS: tuple[str, ...] = (
    "data_platform.s3sync.demo:run_demo",
    "data_platform.silver.demo:run_demo",
    "data_platform.parts.demo:run_demo",
    "data_platform.training.demo:run_demo",
    "data_platform.tiers.demo:run_demo",
    "data_platform.replication.demo:run_demo",
)
DEMO_BUCKET = "data-platform-demo"


class DemoFailure(RuntimeError):
    """A demo check did not hold."""


@dataclass
class DemoContext:
    """What a demo step gets: the stack's addresses, a scratch folder and the process env."""

    pg_url: str  # the platform's data database
    s3_endpoint: str
    workdir: Path
    env: dict[str, str] = field(default_factory=dict)
    bucket: str = DEMO_BUCKET
    say: Callable[[str], None] = print

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name=self.env.get("AWS_DEFAULT_REGION", "us-east-1"),
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
        )

    def run_cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `data-platform ARGS` as a user would, echoing the command; fail on non-zero exit."""
        self.say("$ data-platform " + shlex.join(args))
        done = subprocess.run(
            [sys.executable, "-m", "data_platform.cli", *args],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            check=False,
        )
        for line in (done.stdout + done.stderr).strip().splitlines():
            self.say("    " + line)
        if done.returncode != 0:
            raise DemoFailure(f"`data-platform {shlex.join(args)}` exited {done.returncode}")
        return done


def load_step(spec: str) -> Callable[[DemoContext], None]:
    module_name, attribute = spec.split(":")
    return getattr(importlib.import_module(module_name), attribute)


def run_demo(ctx: DemoContext, steps: Sequence[str] = DEMO_STEPS) -> None:
    for spec in steps:
        ctx.say(f"\n== {spec.split(':')[0].split('.')[-2]} ==")
        load_step(spec)(ctx)
