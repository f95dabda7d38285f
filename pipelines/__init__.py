"""Dagster project: loads the store into the warehouse (and, later, builds the marts)."""
