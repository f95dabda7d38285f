"""Telling the store's admins when a pipeline run fails, through the store's notification hub."""
