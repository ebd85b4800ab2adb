"""`data-platform celery worker`: a Celery worker that runs Dagster steps for
DATA_PLATFORM_EXECUTOR=celery runs, with the same broker, backend and delivery settings."""

from __future__ import annotations

import signal

import click


@click.group("celery")
def celery() -> None:
    """Celery workers that execute the steps of runs started with DATA_PLATFORM_EXECUTOR=celery."""


@celery.command("worker")
@click.option("--name", default=None, help="Worker name, e.g. `worker-a@%h` (Celery's default).")
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(min=1),
    default=None,
    help="Steps run at once (Celery's default: the number of CPUs).",
)
@click.option("--loglevel", default="INFO", show_default=True, help="Celery's log level.")
def worker(name: str | None, concurrency: int | None, loglevel: str) -> None:
    """Run steps from the broker in DATA_PLATFORM_CELERY_BROKER_URL until stopped (Ctrl-C).

    The worker needs what a run needs: the instance variables (DAGSTER_PG_*), the platform's
    (DATA_PLATFORM_PG_URL, DATA_PLATFORM_RAW_URL, AWS_*) and this package installed."""
    from dagster._core.execution.retries import RetryMode
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    from data_platform.execution import (
        CELERY_QUEUE,
        ExecutorConfigError,
        ExecutorSettings,
        celery_executor_for,
    )

    try:
        settings = ExecutorSettings.from_environ()
        settings.check_celery()
    except ExecutorConfigError as exc:
        raise click.ClickException(str(exc)) from None
    executor = celery_executor_for(settings, RetryMode(RetryMode.DISABLED))
    app = make_app(executor.app_args())
    create_task(app)  # `execute_plan`: what the executor sends for each step
    # Started in the background from a script, SIGINT is ignored: give Celery its default back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    argv = ["worker", "--queues", CELERY_QUEUE, "--loglevel", loglevel]
    if name:
        argv += ["--hostname", name]
    if concurrency:
        argv += ["--concurrency", str(concurrency)]
    app.worker_main(argv)
