"""Offline inference: decode, window, run ONNX members, blend, post-process, write.

Imports only numpy, onnxruntime, soundfile and soxr (PyAV and ai-edge-litert lazily, where a file
or a teacher needs them). Never imports torch, Lightning, Hydra, MLflow, `harness` or `train`.
"""

__version__ = "0.1.0"
