"""Cached experiments, one module per chapter (built on the technique modules)."""
