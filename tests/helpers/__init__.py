"""Code the test modules share (not tests, not fixtures): `models` for the tiny configurations and their
cached trained checkpoints, `artifacts` for the cached ONNX artifacts the validation tests run on,
`device` for the loopback ssh device (sshd on 127.0.0.1) and the device's numpy + onnxruntime Python.
Fixtures and session setup stay in conftest.py. Import as `from helpers.models import ...` (pytest puts
tests/ on sys.path)."""
