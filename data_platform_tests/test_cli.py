import subprocess
import sys

import pytest

from data_platform.cli import COMMAND_GROUPS


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "data_platform.cli", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_top_level_help_lists_every_group_without_heavy_imports() -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from data_platform.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(result.output)\n"
        "print('HEAVY', sorted(m for m in ('dagster', 'polars', 'boto3', 'psycopg2') "
        "if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    for name in COMMAND_GROUPS:
        assert name in done.stdout
    assert "HEAVY []" in done.stdout


@pytest.mark.parametrize("group", sorted(COMMAND_GROUPS))
def test_every_command_has_help(group: str) -> None:
    done = _run(group, "--help")
    assert done.returncode == 0, done.stderr
    assert "Usage:" in done.stdout
    import click

    from data_platform.cli import main

    command = main.get_command(click.Context(main), group)
    assert isinstance(command, click.Group)
    for name in command.list_commands(click.Context(command)):
        sub = _run(group, name, "--help")
        assert sub.returncode == 0, sub.stderr
        assert command.get_command(click.Context(command), name).help, f"{group} {name} has no help"


def test_unknown_command_fails_clearly() -> None:
    done = _run("nope")
    assert done.returncode != 0
    assert "No such command" in done.stderr


def test_env_file_fills_only_unset_variables(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from data_platform.cli import load_dotenv

    env_file = tmp_path / ".env"
    env_file.write_text(
        "# comment\nexport DP_TEST_A='from file'\nDP_TEST_B=from file\nnot a setting\n"
    )
    monkeypatch.delenv("DP_TEST_A", raising=False)
    monkeypatch.setenv("DP_TEST_B", "from environment")
    load_dotenv(env_file)
    import os

    assert os.environ["DP_TEST_A"] == "from file"
    assert os.environ["DP_TEST_B"] == "from environment"
    monkeypatch.delenv("DP_TEST_A")
