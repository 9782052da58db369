"""Evaluations that reproduce the dissertation's tables on generated held-out sets."""
