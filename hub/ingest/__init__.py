"""Ingestion: device messages decoded, checked and applied exactly once, in batches."""
