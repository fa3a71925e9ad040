"""Tenants, users, credentials; every request is resolved to a principal scoped to one tenant."""
