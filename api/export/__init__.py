"""GET /api/export/{type} (seed 000): a dashboard section's report as a CSV, Excel or PDF file, built by
the one report builder (`dashboard.reports`) the dashboard and the scheduled reports use."""
