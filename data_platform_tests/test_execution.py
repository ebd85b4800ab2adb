"""The executor choice: multiprocess by default, Celery from environment variables."""

from __future__ import annotations

import subprocess
import sys

import pytest
from dagster._core.execution.retries import RetryMode

from data_platform.execution import (
    BACKEND_VARIABLE,
    BROKER_VARIABLE,
    EXECUTOR_VARIABLE,
    VISIBILITY_VARIABLE,
    ExecutorConfigError,
    ExecutorSettings,
    celery_executor_for,
)

CELERY = {
    EXECUTOR_VARIABLE: "celery",
    BROKER_VARIABLE: "redis://broker:6379/0",
    BACKEND_VARIABLE: "redis://broker:6379/1",
}


def test_default_is_multiprocess() -> None:
    assert ExecutorSettings.from_environ({}).kind == "multiprocess"


def test_celery_settings_deliver_a_dead_workers_step_again() -> None:
    settings = ExecutorSettings.from_environ({**CELERY, VISIBILITY_VARIABLE: "120"})
    executor = celery_executor_for(settings, RetryMode(RetryMode.ENABLED))
    args = executor.app_args()
    assert (args["broker"], args["backend"]) == (CELERY[BROKER_VARIABLE], CELERY[BACKEND_VARIABLE])
    config = vars(args["config_source"])
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1
    assert config["broker_transport_options"]["visibility_timeout"] == 120


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({EXECUTOR_VARIABLE: "dask"}, EXECUTOR_VARIABLE),
        ({EXECUTOR_VARIABLE: "celery", BROKER_VARIABLE: "redis://b:6379/0"}, BACKEND_VARIABLE),
        ({**CELERY, VISIBILITY_VARIABLE: "soon"}, VISIBILITY_VARIABLE),
    ],
)
def test_bad_settings_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ExecutorConfigError, match=names):
        ExecutorSettings.from_environ(environ)


def test_the_code_location_runs_on_the_platform_executor() -> None:
    from data_platform.definitions import defs

    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "data_platform"


def test_worker_without_broker_says_what_to_set() -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "data_platform.cli", "celery", "worker"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert BROKER_VARIABLE in done.stderr
    assert "Traceback" not in done.stderr
