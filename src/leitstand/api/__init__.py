"""The HTTP API (FastAPI): one router per capability, one error renderer, versioned under /api/v1."""
