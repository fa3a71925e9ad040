"""The embedded event store on DuckDB."""

from leitstand.store.duckdb.events import DuckDBEventStore

__all__ = ["DuckDBEventStore"]
