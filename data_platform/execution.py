"""Where a run's steps execute: in subprocesses on the run's machine (the default), or on
Celery workers on other machines (`DATA_PLATFORM_EXECUTOR=celery`, with dagster-celery).

The choice is read from the environment when a run starts, never at import, so one code location
image serves both. Steps only read and write shared parts (Postgres, the object store; the
instance's storage is on Postgres), which is what lets any worker take any step.

A Celery worker that dies in the middle of a step (kill -9, a lost machine) must not lose it:
tasks are acknowledged only when they finish (`task_acks_late`), so the broker hands an
unacknowledged step to another worker. With Redis that happens once the step has been out for
`visibility_timeout` seconds; a step that runs longer than that is handed out a second time while
it still runs, so the timeout must exceed the longest step (silver loads are idempotent snapshot
swaps, so a second delivery replaces a partition, it never doubles it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg

EXECUTOR_VARIABLE = "DATA_PLATFORM_EXECUTOR"
BROKER_VARIABLE = "DATA_PLATFORM_CELERY_BROKER_URL"
BACKEND_VARIABLE = "DATA_PLATFORM_CELERY_BACKEND_URL"
VISIBILITY_VARIABLE = "DATA_PLATFORM_CELERY_VISIBILITY_TIMEOUT"
EXECUTORS = ("multiprocess", "celery")
DEFAULT_VISIBILITY_TIMEOUT_SECONDS = 3600  # Redis's own default: above any silver load
CELERY_QUEUE = "dagster"  # dagster-celery's queue; workers listen on it


class ExecutorConfigError(ValueError):
    """The executor variables are incomplete or invalid; the message says which to set."""


@dataclass(frozen=True)
class ExecutorSettings:
    kind: str = "multiprocess"
    broker_url: str | None = None
    backend_url: str | None = None
    visibility_timeout_seconds: int = DEFAULT_VISIBILITY_TIMEOUT_SECONDS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] = os.environ) -> ExecutorSettings:
        kind = (environ.get(EXECUTOR_VARIABLE) or "multiprocess").strip().lower()
        if kind not in EXECUTORS:
            raise ExecutorConfigError(
                f"{EXECUTOR_VARIABLE}={kind!r} is not an executor: "
                f"use one of {', '.join(EXECUTORS)}"
            )
        timeout_text = environ.get(VISIBILITY_VARIABLE) or str(DEFAULT_VISIBILITY_TIMEOUT_SECONDS)
        if not timeout_text.isdigit() or int(timeout_text) < 1:
            raise ExecutorConfigError(
                f"{VISIBILITY_VARIABLE} must be a whole number of seconds, got {timeout_text!r}"
            )
        settings = cls(
            kind=kind,
            broker_url=environ.get(BROKER_VARIABLE) or None,
            backend_url=environ.get(BACKEND_VARIABLE) or None,
            visibility_timeout_seconds=int(timeout_text),
        )
        if kind == "celery":
            settings.check_celery()
        return settings

    def check_celery(self) -> None:
        """Celery needs both URLs, in the runs (publishers) and in the workers alike."""
        if not (self.broker_url and self.backend_url):
            raise ExecutorConfigError(
                f"Celery needs {BROKER_VARIABLE} and {BACKEND_VARIABLE}, "
                "e.g. redis://host:6379/0 and redis://host:6379/1"
            )

    def celery_config(self) -> dict[str, Any]:
        """Celery settings shared by the executor (publisher) and every worker."""
        # Redis scans for unacknowledged steps every `unacked_restore_interval` seconds; with
        # throttle 1 every scan is real, so a dead worker's step comes back soon after the timeout.
        restore_interval = max(1, min(10, self.visibility_timeout_seconds // 4))
        return {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,  # a killed pool process: requeue at once
            "worker_prefetch_multiplier": 1,  # a worker holds only the step it runs
            "task_default_queue": CELERY_QUEUE,
            "broker_transport_options": {
                "visibility_timeout": self.visibility_timeout_seconds,
                "unacked_restore_interval": restore_interval,
                "unacked_restore_throttle": 1,
            },
            "result_expires": 7 * 24 * 3600,
            "broker_connection_retry_on_startup": True,
        }


def celery_executor_for(settings: ExecutorSettings, retries: Any) -> dg.Executor:
    """dagster-celery's executor with our broker, backend and delivery settings."""
    from dagster_celery.executor import CeleryExecutor

    return CeleryExecutor(
        retries=retries,
        broker=settings.broker_url,
        backend=settings.backend_url,
        config_source=settings.celery_config(),
    )


@dg.executor(
    name="data_platform",
    config_schema=dg.multiprocess_executor.config_schema,
    requirements=dg.multiple_process_executor_requirements(),
)
def platform_executor(init_context: dg.InitExecutorContext) -> dg.Executor:
    """Dagster's multiprocess executor, or dagster-celery's when DATA_PLATFORM_EXECUTOR=celery.

    Run config takes the multiprocess executor's fields (`max_concurrent`, `retries`, ...);
    `retries` applies to both."""
    from dagster._core.execution.retries import RetryMode

    settings = ExecutorSettings.from_environ()
    if settings.kind == "celery":
        retries = RetryMode.from_config(init_context.executor_config["retries"])
        return celery_executor_for(settings, retries)
    create = dg.multiprocess_executor.executor_creation_fn
    assert create is not None
    return create(init_context)
