"""Hypothesis strategies that users reuse in property tests of their own protocols."""
