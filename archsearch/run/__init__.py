"""The run directory: the one place that knows its files and their schema."""
