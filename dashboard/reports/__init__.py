"""Reports: what each dashboard section shows, as data (`model.Report`), built once from the marts and
rendered by the dashboard's pages, the CSV/Excel/PDF exports, `GET /api/export/{type}` and the
scheduled reports alike. Nothing here imports Streamlit."""
