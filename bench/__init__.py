"""Benchmark of the webhook intake and the paid → credit pipeline (`python -m bench`)."""
