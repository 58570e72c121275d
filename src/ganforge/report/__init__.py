"""Turns a run directory into figures (and, later, an HTML report)."""
