"""Sparkplug B 3.0: Leitstand as the primary host application (see host.py and decision 0007)."""
