"""Extract-load of the store (outbox events and entity snapshots) into the warehouse's raw schema."""
