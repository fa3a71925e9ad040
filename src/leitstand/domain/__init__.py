"""The domain model: the words used everywhere, with no I/O and no frameworks."""
