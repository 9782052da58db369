"""Export: PyTorch -> ONNX (checked), quantized ONNX, TensorRT engines."""
