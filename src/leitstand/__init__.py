"""Leitstand: an open industrial cloud for connected plants and their supply chain."""

__version__ = "0.1.0"
