"""Storage behind small interfaces: an event store for time series and a metadata store."""
