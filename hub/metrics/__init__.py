"""Metrics: the catalogue on an injected registry, collectors from store and telemetry, /metrics."""
