"""Everything edgeattn does to ONNX graphs, in one place below the stages that use it.

- `torch_export`: the one torch -> ONNX call (TorchScript or dynamo exporter) every stage goes through;
- `graph`: loading, indexing and sorting graphs, the facts read off them (opset, op histogram, domains);
- `qdq_passes`: rewrites of an exported fake-quant graph into the Q/DQ form runtimes fuse;
- `qdq_graph`, `weights`, `float_twin`: the FP32 twin of a Q/DQ graph and keeping nodes in FP32;
- `checks`: the gates an exported graph must pass; `ort`: in-memory onnxruntime sessions.

The export, quantize, validate and bench stages import from here; nothing here imports them, so the
graph code has one definition of each helper and no import cycles. Submodules are imported on demand
(`edgeattn.onnx.graph`, ...): this package imports neither torch nor onnxruntime by itself.
"""
