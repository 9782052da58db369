"""LISAt (reasoning segmentation) from its decomposed ONNX graphs: pure stages around backends."""
