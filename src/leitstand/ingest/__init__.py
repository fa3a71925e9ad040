"""The ingest pipeline: decode, validate, dedupe, batch, write, dead-letter, back-pressure."""
