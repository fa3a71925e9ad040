"""Transport between sources and writers: in-process (embedded) now, a distributed log at scale."""
