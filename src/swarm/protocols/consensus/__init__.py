"""Robust aggregation and ensemble voting: pure functions over numpy arrays."""
