"""Which tasks get Dagster assets: `tasks = [...]` in a TOML file (read when the code location
loads, like the silver presets), checked against the task-name rule."""

from __future__ import annotations

import tomllib
from pathlib import Path

from data_platform.training.errors import TrainingError
from data_platform.training.layout import check_task


def configured_tasks(path: Path) -> list[str]:
    """The tasks listed in `path`; none when the file does not exist."""
    try:
        document = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise TrainingError(f"cannot read {path}: {exc}; fix the file") from None
    tasks = document.get("tasks", [])
    if not isinstance(tasks, list) or not all(isinstance(t, str) for t in tasks):
        raise TrainingError(f"{path}: 'tasks' must be a list of task names")
    return sorted({check_task(task) for task in tasks})
