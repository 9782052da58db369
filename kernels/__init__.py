"""CUDA pre/post-processing kernels; each has a numpy reference with the same signature."""
