"""Bring your own artifact: run an ONNX or Core ML file that edgeattn did not export.

`artifact_manifest(path, spec)` gives such a file an in-memory manifest from what its graph declares
(`graph`) and the input spec the user gives (`config.ArtifactSpec`, or `sources.input_spec_from`), so
`eval`, `validate` and `bench` run it like any exported artifact.
"""

from edgeattn.byo.assumed import artifact_manifest
from edgeattn.byo.config import SPEC_OPTIONS, ArtifactSpec
from edgeattn.byo.graph import GRAPH_INSPECTORS, GraphFacts
from edgeattn.byo.sources import INPUT_SPEC_SOURCES, input_spec_from

__all__ = [
    "GRAPH_INSPECTORS",
    "INPUT_SPEC_SOURCES",
    "SPEC_OPTIONS",
    "ArtifactSpec",
    "GraphFacts",
    "artifact_manifest",
    "input_spec_from",
]
