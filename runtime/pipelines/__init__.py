"""Pipelines: pure pre/post-processing stages composed around backends."""
