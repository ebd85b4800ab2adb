"""One `data-platform dev demo --serve` stack and one headless Chromium for the whole session.

The browser is Debian's `chromium` package (nothing is downloaded at run time); where it or a
Korean font is missing every browser test is skipped with the command that enables them.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from data_platform.devstack import free_port
from data_platform_tests.dagit_api import start_cli, wait_for

CHROMIUM = Path("/usr/bin/chromium")
ENABLE_HINT = "run `make test-browser` as root, or `apt-get install chromium fonts-noto-cjk`"
SERVE_TIMEOUT_SECONDS = 600  # the whole demo runs first, on a machine shared with other work


@dataclass(frozen=True)
class ServedDemo:
    """The demo's state served by Dagit: its URL, the platform database and the S3 server."""

    url: str
    pg_url: str
    s3_endpoint: str
    bucket: str = "data-platform-demo"

    def s3_client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def korean_font_installed() -> bool:
    if not shutil.which("fc-list"):
        return False
    listing = subprocess.run(["fc-list", ":lang=ko"], capture_output=True, text=True, check=False)
    return bool(listing.stdout.strip())


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    if not CHROMIUM.exists():
        pytest.skip(f"browser tests need the system Chromium at {CHROMIUM}: {ENABLE_HINT}")
    if not korean_font_installed():
        pytest.skip(f"no Korean font (partition names would render as boxes): {ENABLE_HINT}")
    return CHROMIUM


def _stack_variables(log: Path) -> dict[str, str]:
    """The variables `demo --serve` writes for its stack (`export NAME=value` lines)."""
    found = re.search(r"^stack variables: (\S+)", log.read_text(), re.MULTILINE)
    assert found, log.read_text()[-3000:]
    variables = {}
    for line in Path(found.group(1)).read_text().splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        variables[name] = shlex.split(value)[0] if value else ""
    return variables


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


# Package scope: the served stack and Playwright's event loop (which would make asyncio.run in
# later tests fail) end with the browser tests instead of living through the whole session.
@pytest.fixture(scope="package")
def served_demo(
    chromium_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServedDemo]:
    port = free_port()
    log = tmp_path_factory.mktemp("served-demo") / "serve.log"
    process = start_cli(log, {}, "dev", "demo", "--serve", "--port", str(port))

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(
                f"demo --serve exited {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        return _answers(f"http://127.0.0.1:{port}/server_info")

    try:
        wait_for("the served demo's Dagit", up, SERVE_TIMEOUT_SECONDS)
        variables = _stack_variables(log)
        yield ServedDemo(
            url=f"http://127.0.0.1:{port}",
            pg_url=variables["DATA_PLATFORM_PG_URL"],
            s3_endpoint=variables["AWS_ENDPOINT_URL"],
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)  # the CLI stops Dagit, Postgres and SeaweedFS
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture(scope="package")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium_path))
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, served_demo: ServedDemo, tmp_path: Path) -> Iterator[Any]:
    """A fresh tab on the served Dagit; its last state is kept as `final.png` in the tmp dir."""
    context = browser.new_context(
        viewport={"width": 1600, "height": 1000}, base_url=served_demo.url
    )
    context.set_default_timeout(60_000)
    tab = context.new_page()
    yield tab
    tab.screenshot(path=str(tmp_path / "final.png"), full_page=True)
    context.close()
