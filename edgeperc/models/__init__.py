"""Model families: architectures, configs, example inputs, preprocessing and evaluators."""
