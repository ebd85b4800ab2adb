"""The demo: each domain contributes one step that runs its real jobs against the dev stack.

Steps run in order; each prints what it did and raises DemoFailure when a check does not hold.
A new capability joins the demo by adding its `module:function` to DEMO_STEPS.

Dagster work goes through the code location's named jobs (`run_job`) on the instance Dagit
serves afterwards, tagged `demo=true`, so `make serve` shows which job did what. What a sensor
requests runs with the sensor's run key (`run_sensor_requests`), so the daemon's first tick
after the demo finds those runs and does not request them again.
"""

from __future__ import annotations

import importlib
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

DEMO_STEPS: tuple[str, ...] = (
    "data_platform.s3sync.demo:run_demo",
    "data_platform.silver.demo:run_demo",
    "data_platform.parts.demo:run_demo",
    "data_platform.training.demo:run_demo",
    "data_platform.tiers.demo:run_demo",
    "data_platform.replication.demo:run_demo",
    "data_platform.replication.demo:copy_to_serving",
)
DEMO_BUCKET = "data-platform-demo"
DEMO_TAGS = {"demo": "true"}
# Steps say what they did in one line each; Dagster's own DEBUG/INFO lines stay in the event log.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
SENSOR_NAME_TAG = "dagster/sensor_name"  # the tags the daemon matches run keys by
RUN_KEY_TAG = "dagster/run_key"


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


def demo_environment(env: dict[str, str], steps: Sequence[str] = DEMO_STEPS) -> dict[str, str]:
    """What the steps' modules add to the stack's variables (their `environment(env)`), so the
    code location, in the demo and in Dagit after it, reads the demo's data."""
    added: dict[str, str] = {}
    for name in dict.fromkeys(spec.split(":")[0] for spec in steps):
        module = importlib.import_module(name)
        if hasattr(module, "environment"):
            added.update(module.environment({**env, **added}))
    return added


def run_demo(ctx: DemoContext, steps: Sequence[str] = DEMO_STEPS) -> None:
    shown = None
    for spec in steps:
        domain = spec.split(":")[0].split(".")[-2]
        if domain != shown:
            ctx.say(f"\n== {domain} ==")
            shown = domain
        load_step(spec)(ctx)


def run_job(
    job_name: str,
    selection: Sequence[dg.AssetKey],
    *,
    partition_key: str | None = None,
    tags: dict[str, str] | None = None,
    resources: dict[str, Any] | None = None,
) -> dg.ExecuteInProcessResult:
    """Run `selection` of the code location's job `job_name` in this process on the instance of
    DAGSTER_HOME, tagged demo=true, so Dagit lists the run under the job's name."""
    import dagster as dg

    from data_platform.definitions import defs

    if resources:  # the step's own settings (e.g. a local supplier) over the code location's
        defs = dg.Definitions(
            assets=defs.assets,
            asset_checks=defs.asset_checks,
            jobs=defs.jobs,
            resources={**(defs.resources or {}), **resources},
            executor=defs.executor,
        )
    return defs.resolve_job_def(job_name).execute_in_process(
        instance=dg.DagsterInstance.get(),
        asset_selection=list(selection),
        partition_key=partition_key,
        tags={**DEMO_TAGS, **(tags or {})},
        run_config=QUIET_RUN_CONFIG,
        raise_on_error=False,
    )


@dataclass(frozen=True)
class SensorTick:
    run_requests: list[dg.RunRequest]
    cursor: str | None


def sensor_tick(sensor_name: str, cursor: str | None = None) -> SensorTick:
    """One evaluation of the code location's sensor, applying its partition requests and asset
    events to the instance as the daemon would."""
    import dagster as dg

    from data_platform.definitions import defs

    instance = dg.DagsterInstance.get()
    sensor = defs.resolve_sensor_def(sensor_name)
    with dg.build_sensor_context(
        cursor=cursor, instance=instance, resources=defs.resources
    ) as context:
        logging.disable(logging.INFO)  # the sensor's INFO lines (its console logger is its own)
        try:
            result = sensor(context)
        finally:
            logging.disable(logging.NOTSET)
        if not isinstance(result, dg.SensorResult):  # an asset sensor yields its requests
            requests = [r for r in result or () if isinstance(r, dg.RunRequest)]
            return SensorTick(requests, context.cursor)
    for request in result.dynamic_partitions_requests or []:
        instance.add_dynamic_partitions(request.partitions_def_name, request.partition_keys)
    for event in result.asset_events or []:
        instance.report_runless_asset_event(event)
    return SensorTick(list(result.run_requests or []), result.cursor)


def run_sensor_requests(
    sensor_name: str,
    tick: SensorTick,
    job_name: str,
    selection: Sequence[dg.AssetKey],
) -> list[dg.ExecuteInProcessResult]:
    """Run what a sensor tick requested through `job_name`, each run tagged with the sensor's
    name and the request's run key, as the daemon tags the runs it launches: its next tick
    then sees these run keys as done instead of requesting the work again."""
    return [
        run_job(
            job_name,
            selection,
            partition_key=request.partition_key,
            tags={
                **request.tags,
                SENSOR_NAME_TAG: sensor_name,
                **({RUN_KEY_TAG: request.run_key} if request.run_key else {}),
            },
        )
        for request in tick.run_requests or []
    ]


def checks_passed(result: dg.ExecuteInProcessResult) -> bool:
    return result.success and all(c.passed for c in result.get_asset_check_evaluations())
