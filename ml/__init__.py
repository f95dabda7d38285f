"""Training, evaluation and scoring as plain functions over dataframes."""
