"""Code the test modules share (not tests, not fixtures): `models` for the tiny configurations and their
cached trained checkpoints, `artifacts` for the cached ONNX artifacts the validation tests run on.
Fixtures and session setup stay in conftest.py. Import as `from helpers.models import ...` (pytest puts
tests/ on sys.path)."""
