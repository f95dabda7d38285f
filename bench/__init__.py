"""Benchmarks of the store API (bench/api_latency.py). Not imported by the application."""
