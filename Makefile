# Benchmarks (see README "Benchmarks" and bench/README.md). Needs PostgreSQL and Redis locally.
.PHONY: bench bench-quick bench-dashboard mutation

bench:
	uv run python -m bench

bench-quick:
	uv run python -m bench --quick

bench-dashboard:
	uv run python -m bench.dashboard  # 10,000,000 orders (--keep / --reuse: seed once)

# Mutation testing of the money modules (see [tool.mutmut] in pyproject.toml, docs/testing.md).
.PHONY: mutation
mutation:
	rm -rf mutants
	uv run mutmut run
	uv run mutmut results
	uv run python .ci/mutation_gate.py
