"""The Streamlit BI dashboard: `app.py` is the router, `sections/` the pages, `data/` the reads."""
