"""Loading an .mlpackage's ML Program and running it op by op.

The model spec (Model.mlmodel protobuf) is read with coremltools' `load_spec`, the weight blobs with
coremltools' milproto value reader (BlobReader of `libmilstoragepython`). The main function's block is
turned into a list of steps; `const` and `constexpr_*` ops are evaluated once, at load (as Core ML
decompresses weights when it loads a model). Every other op runs through its implementation in
`ops/`, and each output is then rounded to the dtype the program declares for it and checked against
the declared shape — an implementation that drifts from the program fails loudly instead of computing
something else.

Every op type in the program is checked when it loads: an op without an implementation raises
`UnsupportedOpError` naming the op before any input is run.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeattn.errors import InputError
from edgeattn.runtime.coreml_ref.ct_import import import_coremltools
from edgeattn.runtime.coreml_ref.errors import ProgramError, UnsupportedOpError
from edgeattn.runtime.coreml_ref.ops import OPS
from edgeattn.runtime.coreml_ref.values import (
    FLOAT_DTYPES,
    TensorType,
    cast_to,
    tensor_type,
    to_numpy,
    to_storage,
)

# Core ML image color spaces (FeatureTypes.proto ImageFeatureType.ColorSpace).
COLOR_SPACES = {10: "GRAYSCALE", 20: "RGB", 30: "BGR", 40: "GRAYSCALE_FLOAT16"}

# ML Program opset name -> the deployment target that introduced it.
OPSETS = {"CoreML5": "iOS15", "CoreML6": "iOS16", "CoreML7": "iOS17", "CoreML8": "iOS18", "CoreML9": "iOS26"}


@dataclass(frozen=True)
class Binding:
    """One argument of an op: a variable of the program (`name`) or an inline constant (`value`)."""

    name: str | None = None
    value: Any = None


@dataclass
class Step:
    type: str
    name: str
    inputs: dict[str, list[Binding]]
    outputs: list[tuple[str, TensorType | None]]
    tuple_inputs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ProgramInput:
    name: str
    type: TensorType
    image: str | None = None  # color space of an image input (RGB, BGR, GRAYSCALE...), else None


@dataclass
class RunStats:
    """What one run did: op count and wall time per op type (for `profile()`)."""

    seconds: dict[str, float] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)


class MLProgram:
    """The main function of an .mlpackage, ready to run on numpy inputs."""

    def __init__(
        self,
        path: Path,
        spec: Any,
        function: str,
        opset: str,
        inputs: list[ProgramInput],
        outputs: list[str],
        steps: list[Step],
        constants: dict[str, Any],
        op_types: Counter,
    ) -> None:
        self.path = path
        self.spec = spec
        self.function = function
        self.opset = opset
        self.inputs = inputs
        self.outputs = outputs
        self.steps = steps
        # Constants are kept widened to fp32 (exact for fp16 values): ops compute in fp32 anyway, and
        # widening the weights once here instead of at every run is most of a small model's run time.
        self.constants = {k: _widen(v) for k, v in constants.items()}
        self.op_types = op_types  # every op type in the function, const and constexpr ops included
        self._last_use = self._plan_frees()

    @property
    def deployment_target(self) -> str:
        return OPSETS.get(self.opset, self.opset)

    @property
    def compute_dtype(self) -> str:
        """The dtype most of the program's float ops are declared in ("fp16" for an FP16 program)."""
        counts = Counter(
            t.dtype for s in self.steps for _, t in s.outputs if t is not None and t.dtype in FLOAT_DTYPES
        )
        return counts.most_common(1)[0][0] if counts else "fp32"

    def _plan_frees(self) -> dict[int, list[str]]:
        """After which step each intermediate value is dead (so a run holds only live tensors)."""
        last: dict[str, int] = {}
        for i, step in enumerate(self.steps):
            for bindings in step.inputs.values():
                for b in bindings:
                    if b.name is not None:
                        last[b.name] = i
        keep = set(self.outputs) | set(self.constants)
        frees: dict[int, list[str]] = {}
        for name, i in last.items():
            if name not in keep:
                frees.setdefault(i, []).append(name)
        return frees

    # ------------------------------------------------------------------ running
    def run(self, feeds: dict[str, np.ndarray], stats: RunStats | None = None) -> dict[str, np.ndarray]:
        """Outputs (by name, in their declared dtypes) for one set of inputs."""
        env: dict[str, Any] = dict(self.constants)
        for inp in self.inputs:
            if inp.name not in feeds:
                raise InputError(
                    f"input {inp.name!r} of {self.path.name} was not given", f"pass {self._input_names()}"
                )
            env[inp.name] = self._feed(inp, feeds[inp.name])
        with torch.no_grad():
            for i, step in enumerate(self.steps):
                t0 = time.perf_counter() if stats else 0.0
                execute_step(step, env)
                if stats:
                    stats.seconds[step.type] = stats.seconds.get(step.type, 0.0) + time.perf_counter() - t0
                    stats.counts[step.type] += 1
                for name in self._last_use.get(i, ()):
                    env.pop(name, None)
        return {name: to_numpy(env[name]) for name in self.outputs}

    def _input_names(self) -> str:
        return ", ".join(repr(i.name) for i in self.inputs)

    def _feed(self, inp: ProgramInput, value: np.ndarray) -> torch.Tensor:
        arr = np.asarray(value)
        want = inp.type.shape
        if want is not None and (
            len(want) != arr.ndim
            or any(w is not None and w != s for w, s in zip(want, arr.shape, strict=True))
        ):
            raise InputError(
                f"input {inp.name!r} of {self.path.name} has shape {list(arr.shape)}, the program expects {inp.type.describe()}",
                "prepare inputs with the artifact's input spec (batch and size)",
            )
        if inp.image is not None:
            # Core ML images are 8-bit pixel buffers: what the program sees is the rounded, clipped pixel.
            arr = np.clip(np.rint(arr.astype(np.float32)), 0, 255)
            if inp.image == "BGR":
                arr = arr[:, ::-1] if arr.ndim == 4 else arr[::-1]
        return cast_to(torch.from_numpy(np.ascontiguousarray(arr)), inp.type.dtype)

    def profile(self, feeds: dict[str, np.ndarray]) -> RunStats:
        stats = RunStats()
        self.run(feeds, stats)
        return stats


def _gather(step: Step, env: dict[str, Any]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    for key, bindings in step.inputs.items():
        values = [_widen(env[b.name] if b.name is not None else b.value) for b in bindings]
        kwargs[key] = values if (key in step.tuple_inputs or len(values) > 1) else values[0]
    return kwargs


def execute_step(step: Step, env: dict[str, Any]) -> None:
    """Run one op on the values in `env`; its outputs, rounded to their declared dtypes, go into `env`."""
    impl = OPS.get(step.type)
    kwargs = _gather(step, env)
    try:
        result = impl.fn(**kwargs)
    except (ValueError, RuntimeError, IndexError, TypeError) as exc:
        raise ProgramError(
            f"op {step.type!r} ({step.name!r}) failed in the Core ML reference executor: {str(exc).splitlines()[0][:300]}",
            "run the model with Core ML on macOS, or report the program that fails",
        ) from None
    results = result if isinstance(result, tuple) else (result,)
    if len(results) != len(step.outputs):
        raise ProgramError(
            f"op {step.type!r} ({step.name!r}) gave {len(results)} outputs, the program declares {len(step.outputs)}"
        )
    for value, (name, declared) in zip(results, step.outputs, strict=True):
        if declared is not None and isinstance(value, torch.Tensor):
            value = cast_to(value, declared.dtype)
            _check_shape(step, name, value, declared)
        env[name] = value


def _widen(value: Any) -> Any:
    """fp16/bf16 tensors are computed in fp32 (then rounded back by the caller to the declared dtype)."""
    if isinstance(value, torch.Tensor) and value.dtype in (torch.float16, torch.bfloat16):
        return value.float()
    return value


def _check_shape(step: Step, name: str, value: torch.Tensor, declared: TensorType) -> None:
    shape = declared.shape
    if shape is None:
        return
    actual = tuple(value.shape)
    if len(actual) != len(shape) or any(d is not None and d != a for d, a in zip(shape, actual, strict=True)):
        raise ProgramError(
            f"op {step.type!r} ({step.name!r}) produced {name} of shape {list(actual)}, the program declares {declared.describe()}",
            "this is a bug in the Core ML reference executor's implementation of the op: please report it",
        )


# ---------------------------------------------------------------------- loading
def load_program(path: Path | str, function: str | None = None) -> MLProgram:
    """Read the ML Program of an .mlpackage (spec + weights), check every op is implemented, load constants."""
    path = Path(path)
    spec, weights_dir = _read_package(path)
    program = spec.mlProgram
    fname = function or spec.description.defaultFunctionName or "main"
    if fname not in program.functions:
        raise ProgramError(
            f"{path.name} has no function {fname!r} (it has {', '.join(program.functions)})",
            "name an existing function",
        )
    fn = program.functions[fname]
    opset = fn.opset
    if opset not in fn.block_specializations:
        raise ProgramError(
            f"{path.name}: function {fname!r} has no block for its opset {opset}", "re-export the model"
        )
    block = fn.block_specializations[opset]

    op_types = Counter(o.type for o in block.operations)
    _refuse_unsupported(block)

    image_inputs = _image_inputs(spec)
    inputs = []
    for nv in fn.inputs:
        t = tensor_type(nv.type)
        if t is None:
            raise ProgramError(
                f"{path.name}: input {nv.name!r} is not a tensor",
                "only tensor and image inputs are supported",
            )
        inputs.append(ProgramInput(nv.name, t, image_inputs.get(nv.name)))

    reader = _ValueReader(weights_dir)
    constants: dict[str, Any] = {}
    steps: list[Step] = []
    for o in block.operations:
        outputs = [(out.name, tensor_type(out.type)) for out in o.outputs]
        name = _op_name(o, outputs)
        if o.type == "const":
            constants[outputs[0][0]] = reader.value(o.attributes["val"], name)
            continue
        op_def = OPS.get(o.type)
        bindings = {k: [reader.binding(a, name) for a in arg.arguments] for k, arg in o.inputs.items()}
        for k, v in o.attributes.items():  # iOS16 constexpr ops carry their parameters as attributes
            if k != "name":
                bindings[k] = [Binding(value=reader.value(v, name))]
        unknown = sorted(set(bindings) - op_def.inputs)
        if unknown:  # a newer form of the op than the implementation knows: refuse, never ignore
            raise UnsupportedOpError(o.type, name, f"its input(s) {', '.join(unknown)} are not implemented")
        step = Step(o.type, name, bindings, outputs, op_def.tuple_inputs)
        if op_def.const:
            execute_step(step, constants)  # decompressed once, like Core ML does when it loads a model
        else:
            steps.append(step)
    outputs_names = list(block.outputs)
    return MLProgram(path, spec, fname, opset, inputs, outputs_names, steps, constants, op_types)


def program_op_types(path: Path | str) -> Counter:
    """Every op type in an .mlpackage's main function, with counts (without loading its weights)."""
    spec, _ = _read_package(Path(path))
    fn = spec.mlProgram.functions[spec.description.defaultFunctionName or "main"]
    return Counter(o.type for o in fn.block_specializations[fn.opset].operations)


def _refuse_unsupported(block: Any) -> None:
    for o in block.operations:
        if o.blocks:
            raise UnsupportedOpError(
                o.type, _op_name(o, [(x.name, None) for x in o.outputs]), "control flow (nested blocks)"
            )
        if o.type != "const" and o.type not in OPS:
            raise UnsupportedOpError(o.type, _op_name(o, [(x.name, None) for x in o.outputs]))


def _op_name(o: Any, outputs: list[tuple[str, Any]]) -> str:
    attr = o.attributes.get("name")
    if attr is not None and attr.immediateValue.tensor.strings.values:
        return str(attr.immediateValue.tensor.strings.values[0])
    return outputs[0][0] if outputs else o.type


def _read_package(path: Path) -> tuple[Any, Path]:
    if not path.exists():
        raise InputError(f"{path} does not exist", "check the path")
    if not path.is_dir() or path.suffix.lower() != ".mlpackage":
        raise InputError(
            f"{path} is not an .mlpackage folder",
            "give the .mlpackage that `edgeattn export --target coreml` wrote",
        )
    import_coremltools()  # quiet first import
    from coremltools.models import utils as ct_utils

    try:
        spec = ct_utils.load_spec(str(path))
    except Exception as exc:  # libmodelpackage/protobuf raise plain Exceptions for broken packages
        raise InputError(
            f"cannot read the Core ML model in {path} ({str(exc).splitlines()[0][:200]})", "re-export it"
        ) from None
    if spec.WhichOneof("Type") != "mlProgram":
        raise ProgramError(
            f"{path.name} holds a Core ML {spec.WhichOneof('Type')} model, not an ML Program",
            "export with convert_to='mlprogram' (edgeattn export --target coreml does)",
        )
    weights = ct_utils._try_get_weights_dir_path(str(path))
    if weights is None:
        root = Path(ct_utils._ModelPackage(str(path)).getRootModel().path()).parent
        weights = str(root / "weights")
    return spec, Path(weights)


def _image_inputs(spec: Any) -> dict[str, str]:
    images = {}
    for feature in spec.description.input:
        if feature.type.WhichOneof("Type") == "imageType":
            images[feature.name] = COLOR_SPACES.get(feature.type.imageType.colorSpace, "RGB")
    return images


class _ValueReader:
    """Decodes proto values with coremltools' own milproto reader (immediate and blob-file values)."""

    def __init__(self, weights_dir: Path) -> None:
        from coremltools.converters.mil.frontend.milproto import load as milproto_load

        self._load_value = milproto_load._load_value
        self._context = milproto_load.TranscriptionContext(str(weights_dir))
        self._weights_dir = weights_dir

    def value(self, value_proto: Any, op_name: str) -> Any:
        declared = tensor_type(value_proto.type)
        if declared is None:
            raise UnsupportedOpError("const", op_name, f"a {value_proto.type.WhichOneof('type')} constant")
        blob = (
            value_proto.blobFileValue.fileName.split("/")[-1]
            if value_proto.WhichOneof("value") == "blobFileValue"
            else ""
        )
        if blob and not (self._weights_dir / blob).exists():
            raise ProgramError(
                f"the weight file of op {op_name!r} is missing from {self._weights_dir}",
                "re-export the model",
            )
        try:
            decoded = self._load_value(self._context, value_proto)
        except (ValueError, RuntimeError, NotImplementedError) as exc:
            raise ProgramError(
                f"cannot decode a constant of op {op_name!r} ({exc})", "re-export the model"
            ) from None
        return to_storage(decoded, declared.dtype)

    def binding(self, argument: Any, op_name: str) -> Binding:
        kind = argument.WhichOneof("binding")
        if kind == "name":
            return Binding(name=argument.name)
        if kind == "value":
            return Binding(value=self.value(argument.value, op_name))
        raise ProgramError(f"op {op_name!r} has an argument of kind {kind!r}")
