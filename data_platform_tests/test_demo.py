"""The README's first command, end to end, as a user runs it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from data_platform.devstack import free_port
from data_platform_tests.dagit_api import (
    all_runs,
    asset_nodes,
    first_finished_tick,
    latest_event,
    start_sensor,
)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if text in cmdline and state != "Z":
            found.append(cmdline)
    return found


def _stack_processes(output: str) -> list[str]:
    """The Postgres postmaster and SeaweedFS server of the stack whose status lines are in `output`
    (`postgres: postgresql://postgres:***@127.0.0.1:PORT/...`, `s3 api: http://127.0.0.1:PORT`)."""
    pg_port = re.search(r"postgres: \S+@127\.0\.0\.1:(\d+)/", output)
    s3_port = re.search(r"s3 api: +http://127\.0\.0\.1:(\d+)", output)
    assert pg_port and s3_port, output[-3000:]
    s3 = _processes_mentioning(f" -s3.port={s3_port[1]} ")
    postgres = [
        line for line in _processes_mentioning(f" -p {pg_port[1]} ") if "data-platform-pg-" in line
    ]
    return s3 + postgres


def _materializations(port: int, asset_path: list[str]) -> list[dict]:
    query = (
        "query($path: [String!]!) { assetOrError(assetKey: {path: $path}) {"
        " ... on Asset { assetMaterializations(limit: 100) { runId partition } } } }"
    )
    body = json.dumps({"query": query, "variables": {"path": asset_path}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]["assetOrError"]["assetMaterializations"]


def _demo_jobs() -> set[str]:
    from data_platform.parts.defs import JOB_NAME as PARTS_JOB
    from data_platform.replication.defs import JOB_NAME as REPLICATION_JOB
    from data_platform.silver.defs import job_name
    from data_platform.silver.demo import PRESET
    from data_platform.tiers.defs import HOT_JOB, WARM_JOB
    from data_platform.training.defs import OBSERVE_JOB_NAME

    silver_job = job_name(PRESET)
    return {silver_job, PARTS_JOB, OBSERVE_JOB_NAME, HOT_JOB, WARM_JOB, REPLICATION_JOB}


def _check_what_dagit_serves(url: str) -> None:
    """The demo's work as Dagit shows it, and the daemon's first ticks adding no work."""
    from data_platform.definitions import AUTOMATION_SENSOR
    from data_platform.silver.defs import SENSOR_NAME as SILVER_SENSOR
    from data_platform.training.demo import WRITTEN

    runs = all_runs(url)
    assert {run["jobName"] for run in runs} == _demo_jobs()  # no __ephemeral_asset_job__
    assert {(run["status"], run["tags"].get("demo")) for run in runs} == {("SUCCESS", "true")}
    nodes = asset_nodes(url)
    observed = {
        node.path: (latest_event(url, node.path, "observation") or {}).get("metadata", {})
        for node in nodes
        if node.group == "training" and node.observable
    }
    assert {
        task: [
            m.get("dagster/row_count") for path, m in observed.items() if f"/{task}/" in f"/{path}/"
        ]
        for task in WRITTEN
    } == {task: [count] for task, count in WRITTEN.items()}
    serving = [node.path for node in nodes if node.group == "replication"]
    assert len(serving) == 1, nodes
    assert latest_event(url, serving[0], "materialization") is not None

    # The automation sensor ticks at start: the demo's work is handled (warm after hot, the
    # serving copy after silver), nothing runs.
    first = first_finished_tick(url, AUTOMATION_SENSOR, timeout=180)
    assert first["runIds"] == [], first
    # Switched on, the raw-key sensor finds the demo's loads done: no partition is reloaded.
    start_sensor(url, SILVER_SENSOR)
    first = first_finished_tick(url, SILVER_SENSOR, timeout=180)
    assert first["runIds"] == [], first
    assert len(all_runs(url)) == len(runs)


def _demo_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "data_platform.cli", "dev", "demo", *extra]


def test_demo_runs_every_step_and_cleans_up() -> None:
    done = subprocess.run(_demo_command(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every check passed" in done.stdout
    assert "== s3sync ==" in done.stdout
    assert "identical" in done.stdout
    assert "== silver ==" in done.stdout
    assert "every partition holds exactly the rows of its raw files" in done.stdout
    assert "== parts ==" in done.stdout
    assert "verified: transient failures healed, the broken page reported" in done.stdout
    assert "Dagster observed the stored samples {'pdf_extraction': 40, 'chat_summary': 12}" in (
        done.stdout
    )
    assert "verified: the serving copy equals silver (6,000 rows" in done.stdout
    assert _stack_processes(done.stderr) == []


def test_serve_started_in_the_background_stops_everything_on_sigterm() -> None:
    port = free_port()
    # As a script's `cmd &` does: SIGINT ignored, so only SIGTERM can stop it.
    process = subprocess.Popen(
        _demo_command("--serve", "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read()[-3000:]
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/server_info", timeout=2
                ) as response:
                    assert response.status == 200
                    break
            except OSError:
                time.sleep(1)
        else:
            raise AssertionError("Dagit did not come up")
        # the demo's runs are in the instance Dagit reads (on the throwaway Postgres)
        assert len(_materializations(port, ["silver", "silver_stage_1_main"])) == 4
        _check_what_dagit_serves(f"http://127.0.0.1:{port}")
        assert _processes_mentioning(f"-p {port}") != []  # dg dev and its webserver
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=120)[0]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, output[-3000:]
    # Nothing a user cannot act on: no Python warnings (`dagster dev`'s SupersessionWarning),
    # no complaint that the repository's dagster.yaml is not DAGSTER_HOME's.
    assert re.findall(r"\w+Warning: .*|.*DAGSTER_HOME environment variable.*", output) == []
    assert _processes_mentioning(f"-p {port}") == []
    assert _stack_processes(output) == []


def test_dev_up_prints_working_exports_and_stops_on_ctrl_c() -> None:
    import psycopg2

    process = subprocess.Popen(
        [sys.executable, "-m", "data_platform.cli", "dev", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        exports: dict[str, str] = {}
        while "DATA_PLATFORM_RAW_URL" not in exports:
            line = process.stdout.readline()
            assert line, "dev up ended before printing its environment"
            name, _, value = line.removeprefix("export ").strip().partition("=")
            exports[name] = value
        with psycopg2.connect(exports["DATA_PLATFORM_PG_URL"]) as conn, conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            assert cur.fetchone()[0] == "platform"
        with pytest.raises(urllib.error.HTTPError, match="403"):  # up, and wants a signature
            urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/", timeout=5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0, stderr
    assert _stack_processes(stderr) == []
    with pytest.raises(OSError):  # the S3 server is gone, not just its process name
        urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/", timeout=5)
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(exports["DATA_PLATFORM_PG_URL"], connect_timeout=5)
    assert not Path(exports["DAGSTER_HOME"]).exists()


def test_the_leak_check_sees_a_running_stack() -> None:
    """`_stack_processes` must find what a live stack runs, or the checks above prove nothing."""
    process = subprocess.Popen(
        [sys.executable, "-m", "data_platform.cli", "dev", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        status = ""
        while "s3 api:" not in status:
            line = process.stderr.readline()
            assert line, "dev up ended before printing its status"
            status += line
        found = _stack_processes(status)
        assert any("weed server" in line for line in found)
        assert any("postgres" in line for line in found)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == 0
    assert _stack_processes(status) == []
