# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# uv is installed with pip when missing; everything else comes from uv.lock.
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: setup demo serve test lint bench

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	$(UV) sync --locked

demo: setup
	$(UV) run data-platform dev demo

serve: setup
	$(UV) run data-platform dev demo --serve

test: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

bench: setup
	$(UV) run python benchmarks/s3_sync.py
	$(UV) run python benchmarks/silver_load.py
	$(UV) run python benchmarks/sensor_tick.py
	$(UV) run python benchmarks/training_stats.py
