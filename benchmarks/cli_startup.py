"""Start-up of CLI commands: two source trees of data_platform side by side, whole processes.

    uv run python benchmarks/cli_startup.py --base /tmp/main-tree [--rounds 15]

`--base` is another checkout (e.g. `git archive main | tar -x -C /tmp/main-tree`); both run with
this venv's Python, the tree first on PYTHONPATH. Each command runs in alternating order, and
the medians and the ratio (this tree / base) are printed; the imports of the command's module
set are also timed with `python -X importtime` (best of the rounds).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
# what a command imports before it does any work (the silver load command imports
# the loader, sources and postgres modules inside its body, after reading the preset)
COMMANDS = {
    "silver --help": ["-m", "data_platform.cli", "silver", "--help"],
    "silver load --help": ["-m", "data_platform.cli", "silver", "load", "--help"],
    "parts --help": ["-m", "data_platform.cli", "parts", "--help"],
    "replicate run --help": ["-m", "data_platform.cli", "replicate", "run", "--help"],
    "read a preset": [
        "-c",
        "from data_platform.silver.presets import load_preset; load_preset('silver_stage_1_main')",
    ],
    "silver load (imports, preset read)": [
        "-c",
        "import data_platform.silver.cli, data_platform.silver.loader, "
        "data_platform.silver.sources; from data_platform.silver.presets import load_preset; "
        "load_preset('silver_stage_1_main')",
    ],
}


def run(tree: Path, arguments: list[str], importtime: bool = False) -> tuple[float, float]:
    """Wall seconds of the whole process, and its top-level import time (s) when asked."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    flags = ["-X", "importtime"] if importtime else []
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, *flags, *arguments], env=env, capture_output=True, text=True, cwd=tree
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{tree}: {' '.join(arguments)} failed: {done.stderr[-500:]}")
    imported = sum(
        int(line.split("|")[1])
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
        and line.split("|")[1].strip().isdigit()
        and line.split("|")[2].startswith(" ")
        and not line.split("|")[2].startswith("  ")
    )
    return wall, imported / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=True, help="the other source tree")
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    trees = {"base": args.base.resolve(), "this": HERE}
    print(f"{'command':38} {'base':>8} {'this':>8} {'ratio':>6}   imports base/this (best)")
    for name, arguments in COMMANDS.items():
        walls: dict[str, list[float]] = {"base": [], "this": []}
        imports: dict[str, list[float]] = {"base": [], "this": []}
        for round_ in range(args.rounds):
            order = ["base", "this"] if round_ % 2 == 0 else ["this", "base"]
            for label in order:
                walls[label].append(run(trees[label], arguments)[0])
                imports[label].append(run(trees[label], arguments, importtime=True)[1])
        base, this = (statistics.median(walls[k]) for k in ("base", "this"))
        print(
            f"{name:38} {base * 1000:6.0f}ms {this * 1000:6.0f}ms {this / base:5.2f}x"
            f"   {min(imports['base']) * 1000:.0f} / {min(imports['this']) * 1000:.0f} ms"
        )


if __name__ == "__main__":
    main()
