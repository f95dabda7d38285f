"""Publishing the warehouse to its readers."""
