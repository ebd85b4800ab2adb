"""`data-platform dev`: the throwaway stack, the demo, and Dagit on top of them."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCATION_NAME = "data_platform"  # as in workspace.yaml


def _interrupt(_signum: int, _frame: object) -> None:
    # The first Ctrl-C/SIGTERM stops; repeats are ignored so they cannot cut the clean-up short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


@click.group("dev")
def dev() -> None:
    """Throwaway Postgres + S3 API server for trying the platform and running its tests."""
    # A script that starts us with `&` leaves SIGINT ignored: restore Ctrl-C, and let SIGTERM
    # do the same, so either stops Dagit, Postgres and the S3 server and removes their data.
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)


@contextlib.contextmanager
def _stack(workdir: Path) -> Iterator[tuple[str, str, dict[str, str]]]:
    from data_platform.core.postgres import mask_url
    from data_platform.devstack import running_stack, stack_environment

    click.echo("starting Postgres (initdb/pg_ctl) and the S3 API server (SeaweedFS) ...", err=True)
    with running_stack() as (postgres, s3):
        env = stack_environment(postgres.url, s3.endpoint_url, workdir, REPO_ROOT / "dagster.yaml")
        click.echo(f"postgres: {mask_url(postgres.url)}", err=True)
        click.echo(f"s3 api:   {s3.endpoint_url}", err=True)
        yield env["DATA_PLATFORM_PG_URL"], s3.endpoint_url, env


def _wait_for_ctrl_c(message: str) -> None:
    click.echo(message, err=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


@dev.command("up")
def up() -> None:
    """Start the stack, print the environment to use it, and stop everything on Ctrl-C."""
    with (
        tempfile.TemporaryDirectory(prefix="data-platform-dev-") as tmp,
        _stack(Path(tmp)) as (
            _pg,
            _s3,
            env,
        ),
    ):
        for name, value in sorted(env.items()):
            click.echo(f"export {name}={value}")
        _wait_for_ctrl_c("stack is up; Ctrl-C or SIGTERM stops it and removes its data")


@dev.command("demo")
@click.option("--serve", is_flag=True, help="Afterwards keep the stack up and serve Dagit on it.")
@click.option("--port", default=3000, show_default=True, help="Dagit port (with --serve).")
def demo(serve: bool, port: int) -> None:
    """Run every capability once against a throwaway stack and verify the results.

    With --serve, Dagit and the daemon then serve the demo's state (its runs, the serving copy of
    silver, the observed training samples) until Ctrl-C, which removes the stack.

    \b
    Example:
      data-platform dev demo --serve --port 3000
    """
    from data_platform.demo import DemoContext, DemoFailure, demo_environment, run_demo

    with tempfile.TemporaryDirectory(prefix="data-platform-demo-") as tmp:
        workdir = Path(tmp)
        with _stack(workdir) as (pg_url, s3_endpoint, env):
            env = {**env, **demo_environment(env)}  # the code location reads the demo's data
            os.environ.update(env)  # Dagster steps read DAGSTER_HOME and the resource variables
            ctx = DemoContext(pg_url=pg_url, s3_endpoint=s3_endpoint, workdir=workdir, env=env)
            try:
                run_demo(ctx)
            except DemoFailure as exc:
                raise click.ClickException(f"demo failed: {exc}") from None
            click.echo("\ndemo finished: every check passed")
            if serve:
                _serve_dagit(env, port, workdir)


def _serve_dagit(env: dict[str, str], port: int, workdir: Path) -> None:
    env_file = workdir / "stack.env"
    # The stack's variables (its generated password included) for psql, the CLI or a test to
    # reach this stack; 0600, and removed with the stack.
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.writelines(
            f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items())
        )
    click.echo(f"stack variables: {env_file}  (`. {env_file}` to use them)", err=True)
    # The code server starts in the repository (the code location reads training_tasks.toml,
    # presets/ and suppliers/ from where it starts); Dagit and the daemon start in DAGSTER_HOME,
    # beside the dagster.yaml they use (from the repository, `dg dev` would warn that the
    # repository's dagster.yaml is not the one in DAGSTER_HOME).
    from data_platform.devstack import free_port

    home = Path(env["DAGSTER_HOME"])
    code_port = free_port()
    code_server = start_code_server(env, code_port)
    try:
        workspace = home / "workspace.yaml"
        workspace.write_text(
            "load_from:\n  - grpc_server:\n      host: 127.0.0.1\n"
            f"      port: {code_port}\n      location_name: {LOCATION_NAME}\n"
        )
        wait_for_code_server(code_server, code_port)
        dagit = start_dagit(env, port, workspace=workspace, cwd=home)
        try:
            _wait_for_ctrl_c(
                f"Dagit: http://127.0.0.1:{port}  (Ctrl-C or SIGTERM stops Dagit and the stack)"
            )
        finally:
            stop_process_group(dagit)
    finally:
        stop_process_group(code_server)


def _dagster_script(name: str) -> str:
    return shutil.which(name, path=str(Path(sys.executable).parent)) or name


def _own_group(env: dict[str, str], cwd: Path, **popen: Any) -> dict[str, Any]:
    """Popen arguments for a Dagster process in its own process group with SIGINT at its
    default: started in the background, Dagster would ignore SIGINT; we stop the group."""
    return {
        "env": {**os.environ, **env},
        "cwd": cwd,
        "start_new_session": True,
        "preexec_fn": lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        **popen,
    }


def start_code_server(env: dict[str, str], port: int, **popen: Any) -> subprocess.Popen[bytes]:
    """The code location (`data_platform.definitions:defs`) as a gRPC code server."""
    command = [_dagster_script("dagster"), "code-server", "start", "-h", "127.0.0.1"]
    command += ["-p", str(port), "-m", "data_platform.definitions", "-a", "defs"]
    command += ["--location-name", LOCATION_NAME, "--log-level", "warning"]
    return subprocess.Popen(command, **_own_group(env, REPO_ROOT, **popen))


def wait_for_code_server(
    process: subprocess.Popen[bytes], port: int, timeout: float = 300.0
) -> None:
    """Until the code server has loaded the definitions (its health check says SERVING)."""
    check = [
        _dagster_script("dagster"),
        "api",
        "grpc-health-check",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise click.ClickException(f"the code server exited ({process.returncode})")
        done = subprocess.run(check, capture_output=True, check=False)
        if done.returncode == 0:
            return
        time.sleep(1)
    raise click.ClickException(f"the code server did not answer on port {port} in {timeout} s")


def start_dagit(
    env: dict[str, str],
    port: int,
    workspace: Path = REPO_ROOT / "workspace.yaml",
    cwd: Path = REPO_ROOT,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """`dg dev` (Dagit and the daemon, as Dagster 1.13 runs them locally) on 127.0.0.1:`port`
    with `env` over ours; warnings and errors only (runs keep their logs in Dagit)."""
    command = [_dagster_script("dg"), "dev", "-w", str(workspace), "-h", "127.0.0.1"]
    command += ["-p", str(port), "--log-level", "warning"]
    return subprocess.Popen(command, **_own_group(env, cwd, **popen))


def stop_process_group(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Stop the group `process` leads: SIGINT, then SIGTERM, then SIGKILL. Members that outlive
    the leader are killed too (`dg dev` can leave its code server behind, ignoring SIGTERM)."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
