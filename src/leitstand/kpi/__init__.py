"""Manufacturing KPIs computed inside the query engine (SQL over columns), never in Python loops."""
