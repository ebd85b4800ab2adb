"""The README's first command, end to end, as a user runs it."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from data_platform.devstack import free_port


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


def _demo_command(*extra: str) -> list[str]:
    return [sys.executable, "-m", "data_platform.cli", "dev", "demo", *extra]


def test_demo_runs_every_step_and_cleans_up() -> None:
    before = set(_processes_mentioning("data-platform-"))  # the suite's own services
    done = subprocess.run(_demo_command(), capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "every check passed" in done.stdout
    assert "== s3sync ==" in done.stdout
    assert "identical" in done.stdout
    assert "== silver ==" in done.stdout
    assert "every partition holds exactly the rows of its raw files" in done.stdout
    assert "== parts ==" in done.stdout
    assert "verified: transient failures healed, the broken page reported" in done.stdout
    assert set(_processes_mentioning("data-platform-")) <= before


def test_serve_keeps_dagit_up_and_stops_everything_on_ctrl_c() -> None:
    before = set(_processes_mentioning("data-platform-"))
    port = free_port()
    process = subprocess.Popen(
        _demo_command("--serve", "--port", str(port)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
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
        process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode in (0, 1, -signal.SIGINT)
    assert _processes_mentioning(f"-p {port}") == []
    assert set(_processes_mentioning("data-platform-")) <= before


def test_dev_up_prints_working_exports_and_stops_on_ctrl_c() -> None:
    import psycopg2

    before = set(_processes_mentioning("data-platform-"))
    process = subprocess.Popen(
        [sys.executable, "-m", "data_platform.cli", "dev", "up"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
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
        with urllib.request.urlopen(exports["AWS_ENDPOINT_URL"] + "/moto-api/") as response:
            assert response.status == 200
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert set(_processes_mentioning("data-platform-")) <= before
    assert not Path(exports["DAGSTER_HOME"]).exists()
