# Benchmarks (see README "Benchmarks" and bench/README.md). Needs PostgreSQL and Redis locally.
.PHONY: bench bench-quick bench-dashboard

bench:
	uv run python -m bench

bench-quick:
	uv run python -m bench --quick

bench-dashboard:
	uv run python -m bench.dashboard --orders 1000000
