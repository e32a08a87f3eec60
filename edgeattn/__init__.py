"""edgeattn: prune, quantize, export, validate and benchmark attention vision models for the edge.

Heavy dependencies (torch, onnx, coremltools, tensorrt) are imported by the modules that need them,
so `import edgeattn` stays cheap.
"""

__version__ = "0.1.0"
