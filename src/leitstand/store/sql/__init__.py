"""The metadata store on SQLAlchemy 2: SQLite embedded, PostgreSQL at scale; schema by Alembic."""

from leitstand.store.sql.metadata import SqlMetadataStore

__all__ = ["SqlMetadataStore"]
