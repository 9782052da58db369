"""Runtime: backends that run exported models, and pipelines built on them."""
