# batsched: `make run` starts the whole simulated system, `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: venv run test test-ha test-compose test-fresh lint format schemas bench-planner bench-price-estimate bench-forecast backtest compare-tariffs bench-backtest bench-load bench-fleet fuzz-long soak clean image-check image-size settings-doc

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev,tools,sim]'
	rm -f $(VENV)/.installed-*; touch $@

run: venv
	$(PY) -m tools.launcher

# The planner's kernel is compiled once into numba's cache first, so no test waits seconds for a first plan.
test: venv
	$(PY) -m services.planner.dp_kernel
	$(PY) -m pytest -q -n 2 --dist loadgroup -m "not slow and not compose and not ha"

# compose.yaml + compose.sim.yaml on a private Docker engine (root; installs docker.io, docker-compose and
# debootstrap where missing; local stand-ins for the base images where no registry answers): tests/deploy/test_stack.py.
test-compose: venv
	bash tools/docker_ci/test_compose.sh

# batsched in a real Home Assistant core (tests/ha): its own venv (tools/ha_venv.py, built once under ~/.cache),
# onboarded, the MQTT integration added through its API; skipped with the reason where no Python fits. Prints its time.
test-ha: venv
	@start=$$(date +%s); $(PY) -m pytest -q -s -m ha tests/ha; rc=$$?; \
		echo "make test-ha: $$(( $$(date +%s) - start )) s"; exit $$rc

# `make test` in a fresh Debian container with only the README's prerequisites (same private engine, as root).
test-fresh: venv
	bash tools/docker_ci/test_compose.sh --fresh-make-test

# Build the image alone on the same private engine and print its size, the base's and the biggest layers/packages.
image-size: venv
	bash tools/docker_ci/test_compose.sh --image-size

lint: venv
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: venv
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

schemas: venv
	$(PY) -m tools.gen_schemas

# The Dockerfile's install step (tools/install_deps.py) into a fresh venv, then the image's entry points (no Docker needed).
image-check: venv
	$(PY) -m pytest -q -m slow tests/deploy/test_image.py

# Regenerate .env.example and the README's configuration table from the settings models.
settings-doc: venv
	$(PY) -m tools.settings_doc

bench-planner: venv
	$(PY) -m tools.bench_planner

# The price estimate walk-forward over 2022-2024 Agile region J against naive baselines (MAE, band coverage).
bench-price-estimate: venv
	$(PY) -m tools.bench_price_estimate

bench-forecast: venv
	$(PY) -m tools.bench_forecast

# `make backtest ARGS="--consumption my.csv --pv-kwp 4"`: see docs/savings.md
backtest: venv
	$(PY) -m tools.cli backtest $(ARGS)

# `make compare-tariffs ARGS="--consumption my.csv --pv-kwp 4 --region J"`: see docs/savings.md
compare-tariffs: venv
	$(PY) -m tools.cli compare-tariffs $(ARGS)

# The bundled real year with the planner benchmark's settings (its J-2021/22-4kWp scenario); prints the time taken.
bench-backtest: venv
	$(PY) -m tools.cli backtest --from 2021-10-01 --to 2022-09-19 --fill-gaps 1 --min-soc 0 --max-charge-price 2 \
		--target-soc-cap 100 --pv-kwp 4 --forecasts perfect --out artifacts/backtest-year

# 100 QoS-1 state messages/s for 60 s into planner + dashboard (loss), and price -> executor decision latency.
bench-load: venv
	$(PY) -m tools.bench_load

# A fleet of homes on one broker, planned by a $$share group of 1 and 2 planner processes (N = 100 and 1,000).
bench-fleet: venv
	$(PY) -m tools.bench_fleet --homes 100 1000 --workers 1 2

# The bus and HTTP fuzzing of make test with 10,000 cases per target instead of 1,000, exploring new cases each run.
fuzz-long: venv
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -s tests/reliability/test_fuzz_bus.py tests/reliability/test_fuzz_http.py

soak: venv fuzz-long
	HYPOTHESIS_PROFILE=long $(PY) -m pytest -q -m slow
	$(PY) -m tools.bench_load --duration 600 --samples 300
	$(PY) -m tools.bench_fleet --homes 1000 --workers 1 2

clean:
	rm -rf .run artifacts .pytest_cache .ruff_cache .hypothesis
