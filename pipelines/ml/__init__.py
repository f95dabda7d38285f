"""The ML assets: models trained from the warehouse, saved to the registry, their outputs in `ml.*`."""
