"""The CLI's `.env` and logging set-up (the top-level `data-platform` options)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from data_platform.cli import load_dotenv

TRICKY_ENV = r"""
A=1
B=plain # comment
C="double # not a comment"
D='single $HOME \n stays'
E="escaped \"quote\" and\nnewline"
F="first line
second line"
export G=exported
H=
I = spaced
"""


def test_dotenv_reads_like_dagster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dagster._core.secrets.env_file import get_env_var_dict

    (tmp_path / ".env").write_text(TRICKY_ENV)
    dagster_sees = get_env_var_dict(str(tmp_path))
    for name in dagster_sees:
        monkeypatch.delenv(name, raising=False)
    load_dotenv(tmp_path / ".env")
    assert {name: os.environ[name] for name in dagster_sees} == dagster_sees
    assert dagster_sees["B"] == "plain" and dagster_sees["F"] == "first line\nsecond line"


def test_dotenv_never_overrides_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("DATA_PLATFORM_PROBE=from-file\n")
    monkeypatch.setenv("DATA_PLATFORM_PROBE", "from-env")
    load_dotenv(tmp_path / ".env")
    assert os.environ["DATA_PLATFORM_PROBE"] == "from-env"


def test_dotenv_is_imported_only_when_a_file_exists(tmp_path: Path) -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from data_platform.cli import main\n"
        "CliRunner().invoke(main, ['--env-file', sys.argv[1], 'dev', '--help'])\n"
        "print('dotenv' in sys.modules)\n"
    )
    missing = tmp_path / "missing.env"
    present = tmp_path / "present.env"
    present.write_text("X=1\n")
    for path, imported in ((missing, "False"), (present, "True")):
        done = subprocess.run(
            [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, check=True
        )
        assert done.stdout.strip() == imported
