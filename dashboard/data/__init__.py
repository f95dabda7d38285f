"""What the dashboard reads, and how: a read-only engine, the queries, and their caches."""
