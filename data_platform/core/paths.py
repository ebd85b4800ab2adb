"""Where the platform keeps its own files on a user's machine."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$DATA_PLATFORM_CACHE_DIR, else $XDG_CACHE_HOME/data-platform, else ~/.cache/data-platform;
    read at call time, joined with `parts`."""
    explicit = os.environ.get("DATA_PLATFORM_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser().joinpath(*parts)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache").joinpath("data-platform", *parts)
