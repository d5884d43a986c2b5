"""Operating the service: Prometheus metrics, structured logs with a correlation id, health."""
