"""A reference interpreter of Core ML ML Programs, so Core ML exports can be checked on Linux.

`load_program(path)` reads an .mlpackage with coremltools' own readers (the Model.mlmodel protobuf
and the weight blobs) and returns an `MLProgram` whose `run({input: array})` executes the main
function op by op with torch on the CPU, rounding every op's output to the dtype the program declares
(an FP16 program is computed as FP16, op by op). It emulates the program as written, not a particular
Core ML compute unit: see docs/coreml-reference-executor.md for what it cannot reproduce (Neural
Engine / GPU numerics, Core ML's own graph rewrites).
"""

from edgeattn.runtime.coreml_ref.errors import ProgramError, UnsupportedOpError
from edgeattn.runtime.coreml_ref.ops import implemented_ops
from edgeattn.runtime.coreml_ref.program import MLProgram, load_program, program_op_types

__all__ = [
    "MLProgram",
    "ProgramError",
    "UnsupportedOpError",
    "implemented_ops",
    "load_program",
    "program_op_types",
]
