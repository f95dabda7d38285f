# The two commands of the README: `make demo` (main job) and `make test` (the test suite).
UV ?= python3 -m uv
RUN = $(UV) run --frozen

.PHONY: setup test lint demo api migrate bench bench-realtime bench-simulator bench-pipeline bench-freshness bench-ml bench-ml-serving bench-dashboard docs
setup:  ## install uv, the locked Python packages, and start PostgreSQL and Redis if needed
	bash .ci/setup

lint: setup
	$(RUN) ruff check .
	$(RUN) ruff format --check api tests simulator dashboard pipelines warehouse bench ml
	$(RUN) mypy

test: lint  ## lint, type-check, then the whole suite on SQLite and PostgreSQL
	$(RUN) pytest -n 2 --durations=15

migrate: setup
	$(RUN) store db upgrade

demo: setup  ## main job: 90 days of simulated history through the API, the pipeline, then API + Dagster UI + dashboard with live traffic (Ctrl-C stops all; a second run reuses the data, `make demo DEMO_ARGS=--reset` starts over)
	$(RUN) store demo $(DEMO_ARGS)

bench: setup  ## issue targets: API latency on SQLite and PostgreSQL (wrk measures max req/s)
	command -v wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk >/dev/null) || true
	$(RUN) python -m bench.api_latency

bench-realtime: setup  ## issue 3 targets: 1000 sockets at 500 msg/s, call set-up, cached product detail
	$(RUN) python -m bench.realtime

bench-simulator: setup  ## issue 4 targets: backfill requests/s, the demo profile's data time (add BENCH_ARGS=--main-job)
	$(RUN) python -m bench.simulator $(BENCH_ARGS)

bench-pipeline: setup  ## issue 5 targets: store → warehouse events/s on both stores and warehouses, against dlt (BENCH_ARGS=--events 1000000 for a quick run)
	$(RUN) python -m bench.pipeline $(BENCH_ARGS)

bench-freshness: setup  ## issue 5 target: an order placed through the API visible in mart_shop_daily, with the sensor running
	$(RUN) python -m bench.freshness $(BENCH_ARGS)

bench-ml: setup  ## issue 6 targets: held-out quality of every model against its baseline on the demo profile, and the training time (BENCH_ARGS=--serving adds bench-ml-serving)
	$(RUN) python -m bench.ml $(BENCH_ARGS)

bench-ml-serving: setup  ## issue 6 target: GET /api/recommendations/{userId} p99 <= 30 ms at 200 req/s on the demo-size store (BENCH_ARGS=--backend both --reuse)
	$(RUN) python -m bench.recommendations $(BENCH_ARGS)

bench-dashboard: setup  ## issue 7 targets: every page's server-side run on 10M-event marts (cold <= 3 s, warm <= 1 s), a 30-day shop PDF with 6 charts <= 5 s (BENCH_ARGS=--reuse keeps the built warehouse)
	$(RUN) python -m bench.dashboard $(BENCH_ARGS)

docs: setup  ## regenerate docs/events.md from the outbox's event catalogue
	$(RUN) python -m api.outbox.doc
