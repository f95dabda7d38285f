"""Data quality of the warehouse: Great Expectations suites run as Dagster asset checks."""
