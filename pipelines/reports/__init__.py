"""Scheduled reports: definitions in a YAML file (`definitions`), one Dagster schedule each
(`schedules`) running the `send_report` job (`jobs`), which builds the report with the dashboard's one
report builder and emails every format in one message through the notification hub's email channel."""
