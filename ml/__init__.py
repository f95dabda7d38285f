"""Training, evaluation and scoring as plain functions over pandas dataframes (no Dagster, no FastAPI).

- `forecast`: daily demand per category and shop (prophet), backtest against seasonal naive, restocking.
- `price`: purchase probability against price relative to the category reference; best prices.
- `segments`: RFM and behaviour features, k-means with k by silhouette, named segments.
- `recommend`: seed 001 §3 baseline, item-item collaborative blend, offline evaluation, store rows.
- `fraud`: point-in-time order features, gradient boosting (IsolationForest fallback), `score_order`.
- `registry`: versioned artifacts with manifests, newest good model, hot reload.
- `insights`: ranked plain-language findings with their numbers.

Each function documents the frame it reads (columns, types, one row per what); tests/ml/frames.py
builds them with SQL over the store and names the warehouse marts that hold the same rows.
"""
