"""Warehouse access shared by the pipelines, the API and the dashboard (a DuckDB file by default)."""
