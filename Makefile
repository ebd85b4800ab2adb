# Two commands on a fresh machine with Python 3.11+: `make demo` and `make test`.
# uv is installed with pip when missing; everything else comes from uv.lock.
UV ?= $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: setup demo serve test test-browser browser-deps lint bench

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || \
		python3 -m pip install --quiet uv || python3 -m pip install --quiet --user uv || \
		python3 -m pip install --quiet --user --break-system-packages uv
	@# Bytecode at install: a CLI process then starts in ~0.13 s instead of ~0.29 s where Python
	@# writes no caches (PYTHONDONTWRITEBYTECODE). A flag here, not `compile-bytecode` in
	@# pyproject: with that setting every `uv run` recompiles the venv (~0.8 s, uv issue 12202).
	$(UV) sync --locked --compile-bytecode
	$(UV) run --no-sync python -m compileall -q data_platform

demo: setup
	$(UV) run data-platform dev demo

# The demo, then Dagit and the daemon (`dg dev`) on its stack: the demo's runs, the serving copy,
# the observed training samples. Ctrl-C stops everything and removes the stack's data.
serve: setup
	$(UV) run data-platform dev demo --serve

# Dagit is tested in headless Chromium: Debian's chromium and a CJK font (Korean partition names),
# installed with apt when run as root (~40 s); nothing is downloaded by Playwright. Without them
# (not root) the browser tests skip and say which command installs them.
test: setup browser-deps
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run pytest

test-browser: setup
	@$(MAKE) --no-print-directory browser-deps BROWSER_REQUIRED=1
	$(UV) run pytest data_platform_tests/browser

browser-deps:
	@if [ ! -x /usr/bin/chromium ] || ! fc-list :lang=ko 2>/dev/null | grep -q .; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
		else \
			echo "browser tests need Debian's browser and a Korean font:" \
				"sudo apt-get install chromium fonts-noto-cjk"; \
			[ -z "$(BROWSER_REQUIRED)" ]; \
		fi; \
	fi

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

bench: setup
	$(UV) run python benchmarks/s3_sync.py
	$(UV) run python benchmarks/s3_clients.py
	$(UV) run python benchmarks/silver_load.py
	$(UV) run python benchmarks/sensor_tick.py
	$(UV) run python benchmarks/training_stats.py
	$(UV) run python benchmarks/parts.py
	$(UV) run python benchmarks/tiers.py --days 31
	$(UV) run python benchmarks/replication.py
