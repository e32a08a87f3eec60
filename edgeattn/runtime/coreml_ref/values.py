"""MIL types and values: the program's declared dtypes and how each is held while the program runs.

Every tensor is held as a torch tensor of the *storage* dtype of its declared MIL dtype (fp16 as
float16, int8 as int8, ...). MIL dtypes that torch cannot compute with (uint16/uint32, sub-byte
palette indices) are held in a wider integer type that keeps every value. Constants are decoded with
coremltools' own milproto reader (`_load_value`: immediate values, and blob-file values through
`libmilstoragepython`'s BlobReader, sub-byte unpacking included).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from edgeattn.runtime.coreml_ref.errors import ProgramError

# proto DataType enum value -> MIL dtype name (the names `cast` and `quantize` take).
PROTO_DTYPES: dict[int, str] = {
    1: "bool",
    2: "string",
    10: "fp16",
    11: "fp32",
    12: "fp64",
    13: "bf16",
    21: "int8",
    22: "int16",
    23: "int32",
    24: "int64",
    25: "int4",
    31: "uint8",
    32: "uint16",
    33: "uint32",
    34: "uint64",
    35: "uint4",
    36: "uint2",
    37: "uint1",
    38: "uint6",
    39: "uint3",
}

# MIL dtype name -> torch dtype that holds it exactly.
STORAGE: dict[str, torch.dtype] = {
    "bool": torch.bool,
    "fp16": torch.float16,
    "fp32": torch.float32,
    "fp64": torch.float64,
    "bf16": torch.bfloat16,
    "int8": torch.int8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "int4": torch.int8,
    "uint8": torch.uint8,
    "uint16": torch.int32,
    "uint32": torch.int64,
    "uint64": torch.int64,
    "uint4": torch.uint8,
    "uint2": torch.uint8,
    "uint1": torch.uint8,
    "uint6": torch.uint8,
    "uint3": torch.uint8,
}

# Numeric range of the integer dtypes (for saturating casts such as quantize's clip).
INT_RANGES: dict[str, tuple[int, int]] = {
    "int8": (-128, 127),
    "uint8": (0, 255),
    "int16": (-32768, 32767),
    "uint16": (0, 65535),
    "int32": (-(2**31), 2**31 - 1),
    "int4": (-8, 7),
    "uint4": (0, 15),
}

FLOAT_DTYPES = {"fp16", "fp32", "fp64", "bf16"}


@dataclass(frozen=True)
class TensorType:
    """A declared MIL tensor type: dtype name and shape (None = unknown rank; a None dim = unknown size)."""

    dtype: str
    shape: tuple[int | None, ...] | None

    def describe(self) -> str:
        dims = "*" if self.shape is None else ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"tensor<{self.dtype}, [{dims}]>"


def tensor_type(value_type: Any) -> TensorType | None:
    """The TensorType of a proto `ValueType`, or None for list/tuple/dict/state types."""
    if value_type.WhichOneof("type") != "tensorType":
        return None
    t = value_type.tensorType
    dtype = PROTO_DTYPES.get(t.dataType)
    if dtype is None:
        raise ProgramError(f"tensor data type {t.dataType} is not a MIL data type this executor knows")
    if t.rank < 0:
        return TensorType(dtype, None)
    dims = tuple(d.constant.size if d.WhichOneof("dimension") == "constant" else None for d in t.dimensions)
    return TensorType(dtype, dims)


def to_storage(value: Any, dtype: str) -> Any:
    """A decoded constant (numpy array/scalar, Python number or str) as the value the executor holds."""
    if dtype == "string" or isinstance(value, str):
        return str(value)
    arr = np.asarray(value)
    if dtype not in STORAGE:
        raise ProgramError(f"constants of MIL type {dtype} are not supported")
    storage = STORAGE[dtype]
    if storage == torch.bfloat16:
        return torch.from_numpy(arr.astype(np.float32)).to(torch.bfloat16)
    np_dtype = torch.empty((), dtype=storage).numpy().dtype
    return torch.from_numpy(np.ascontiguousarray(arr.astype(np_dtype)))


def cast_to(value: torch.Tensor, dtype: str) -> torch.Tensor:
    """Round/convert a computed tensor to the storage of declared MIL dtype `dtype` (e.g. fp32 -> fp16)."""
    storage = STORAGE[dtype]
    return value if value.dtype == storage else value.to(storage)


def to_numpy(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.detach().numpy()
    return value
