"""edgeperc: PyTorch checkpoints to ONNX, quantized ONNX and TensorRT engines, run by one backend interface."""

__version__ = "0.1.0"
