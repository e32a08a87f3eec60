"""The recipe schema: what one YAML file may say. It composes the stages' own config objects
(`TrainConfig`, `PruneConfig`, `QuantizeConfig`, `ExportShape`, `Gates`, `BenchConfig`, `DeviceConfig`), so
a default is written once, next to its stage, and the CLI, the library and recipes share it.

A recipe is checked completely before any work starts: unknown keys (with a did-you-mean), wrong
types, out-of-range values, target × precision pairs that cannot exist and missing files are all
reported with the key's path (`prune.ratio`, `export.targets[1].precisions[0]`). Paths in a recipe are
relative to the recipe file's folder, so a recipe means the same thing from any working directory.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edgeattn.bench.config import BenchConfig
from edgeattn.config import StageConfig
from edgeattn.device.config import DeviceConfig
from edgeattn.export.config import ExportShape
from edgeattn.prune.config import PruneConfig
from edgeattn.quantize.config import QuantizeConfig
from edgeattn.train.config import TrainConfig
from edgeattn.validate.gates import Gates

# int8 (weights and activations) is exported from each quantized checkpoint, so it needs a `quantize`
# section; the others (Core ML's weight-only int8-weights too) from the FP32 (pruned) checkpoint.
QUANTIZED_PRECISIONS = ("int8",)
QUANT_METHODS = ("ptq", "qat")

Section = StageConfig  # every recipe section refuses unknown keys with a did-you-mean


def target_precisions() -> dict[str, tuple[str, ...]]:
    """Which precisions each export target can produce: the exporters' own declarations."""
    from edgeattn.export import target_precisions as from_exporters

    return from_exporters()


class ModelSection(Section):
    """The model: a zoo `name` (trained by the `train` section) or an existing `checkpoint`."""

    name: str | None = Field(
        None,
        description="Zoo name (mobilevit_xxs, efficientformer_l1, attn_vgg11, ...), timm:NAME or torchvision:NAME.",
    )
    checkpoint: Path | None = Field(None, description="edgeattn checkpoint to start from (no training then).")
    input_size: int | None = Field(
        None, gt=0, le=2048, description="Input side in pixels (default: the model's)."
    )
    num_classes: int | None = Field(None, gt=1, description="Classes (default: the data set's).")
    options: dict[str, Any] = Field(
        default_factory=dict, description="Family options, e.g. attention: softmax."
    )

    @model_validator(mode="after")
    def _name_or_checkpoint(self) -> ModelSection:
        if self.name is None and self.checkpoint is None:
            raise PydanticCustomError(
                "missing_model", "give model.name (to train) or model.checkpoint (to start from)"
            )
        return self


class DataSection(Section):
    """Data-set specs (builtin:digits, an ImageFolder tree, an .npz) for each use; each stage reads its
    own split of its spec (train/calib/val). `calib` and `eval` default to `train`."""

    train: str = Field(
        "builtin:digits",
        min_length=1,
        description="Training data (train split) — also the default for calib and eval.",
    )
    calib: str | None = Field(
        None, description="Calibration data for PTQ and Core ML (its calib split; `PATH@all`: every image)."
    )
    eval: str | None = Field(
        None, description="Evaluation data for checkpoints and validation (split `validate.split`)."
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"train": data} if isinstance(data, str) else data

    @property
    def calib_spec(self) -> str:
        return self.calib or self.train

    @property
    def eval_spec(self) -> str:
        return self.eval or self.train


class TrainSection(TrainConfig):
    """Train the baseline (only when model.checkpoint is not given)."""

    # A recipe trains from scratch or takes model.checkpoint as it is (fine-tuning in recipes: later).
    recipe_excluded: ClassVar[frozenset[str]] = frozenset({"init", "lora", "lora_alpha"})


class PruneSection(PruneConfig):
    """Structured head pruning. Give exactly one of ratio, heads, target_macs."""

    enabled: bool = Field(True, description="false: keep every head (same as leaving the section out).")

    def config(self) -> PruneConfig:
        return PruneConfig.build(**self.model_dump(exclude={"enabled"}))

    @model_validator(mode="after")
    def _one_amount(self) -> PruneSection:
        given = [k for k in ("ratio", "heads", "target_macs") if getattr(self, k) is not None]
        if self.enabled and len(given) != 1:
            raise PydanticCustomError(
                "prune_amount",
                "give exactly one of ratio, heads, target_macs (got {got})",
                {"got": ", ".join(given) or "none"},
            )
        return self


class QuantMethod(QuantizeConfig):
    """Options of one quantization method (PTQ or QAT); epochs, lr and batch_size are QAT's only."""

    # The section (ptq: / qat:) says which method; the export targets decide the placement; a recipe
    # calibrates on its own data's calibration split (`quantize --calib DIR` is the CLI's).
    recipe_excluded: ClassVar[frozenset[str]] = frozenset({"qat", "runtime", "calib"})

    def config(self, qat: bool, runtime: str) -> QuantizeConfig:
        return QuantizeConfig.build(self, qat=qat, runtime=runtime)


class QuantizeSection(Section):
    """INT8 quantization. Each method that is present (even as `{}`) is run: ptq, qat or both — once
    per Q/DQ placement the int8 exports need (onnxruntime for onnx/coreml, tensorrt for tensorrt)."""

    ptq: QuantMethod | None = Field(None, description="Post-training quantization (calibration only).")
    qat: QuantMethod | None = Field(
        None, description="Quantization-aware training (calibration, then fine-tuning)."
    )
    device: str = Field(
        "local",
        description="The machine that will run the INT8 model: local, a name from `devices:` or an ssh:// URL "
        "(cpu_int8 auto detects its CPU; placement measured times there).",
    )

    @property
    def methods(self) -> dict[str, QuantMethod]:
        return {m: getattr(self, m) for m in QUANT_METHODS if getattr(self, m) is not None}

    @model_validator(mode="after")
    def _some_method(self) -> QuantizeSection:
        if not self.methods:
            raise PydanticCustomError(
                "no_method", "give ptq: {} and/or qat: {} (or remove the quantize section)"
            )
        return self


class ExportTarget(Section):
    """One target and the precisions to export for it."""

    target: str = Field(description="onnx, tensorrt or coreml.")
    precisions: list[str] = Field(
        default_factory=lambda: ["fp32"],
        min_length=1,
        description="Precisions to export (`precision: X` for one).",
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Target options passed to the exporter."
    )

    @model_validator(mode="before")
    @classmethod
    def _single_precision(cls, data: Any) -> Any:
        if isinstance(data, dict) and "precision" in data and "precisions" not in data:
            data = dict(data)
            data["precisions"] = [data.pop("precision")]
        return data

    @field_validator("target")
    @classmethod
    def _known_target(cls, v: str) -> str:
        targets = target_precisions()
        if v not in targets:
            close = difflib.get_close_matches(v, list(targets), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PydanticCustomError(
                "unknown_target",
                "unknown target '{v}' — {hint}choose one of {choices}",
                {"v": v, "hint": hint, "choices": ", ".join(targets)},
            )
        return v

    @model_validator(mode="after")
    def _precisions_exist(self) -> ExportTarget:
        allowed = target_precisions()[self.target]
        for i, p in enumerate(self.precisions):
            if p not in allowed:
                raise PydanticCustomError(
                    "bad_precision",
                    "{target} cannot be exported as '{p}' — choose from {allowed}",
                    {"at": f"precisions[{i}]", "target": self.target, "p": p, "allowed": ", ".join(allowed)},
                )
        if len(set(self.precisions)) != len(self.precisions):
            raise PydanticCustomError("dup_precision", "precisions lists a precision twice")
        return self


class ExportSection(ExportShape):
    """What to export. int8 artifacts are made from every quantized checkpoint (PTQ and/or QAT)."""

    targets: list[ExportTarget] = Field(
        default_factory=lambda: [ExportTarget(target="onnx")], min_length=1, description="What to export."
    )


class DeviceSection(DeviceConfig):
    """A device the bench, validate and quantize sections can name: `name: ssh://user@host` or its options."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"url": data} if isinstance(data, str) else data


def _device_names(v: Any) -> Any:
    """`device: jetson` or `device: [local, jetson]` -> a list of names, each once."""
    names = [v] if isinstance(v, str) else v
    if isinstance(names, list) and len({str(n) for n in names}) != len(names):
        raise PydanticCustomError("dup_device", "names a device twice")
    return names


DEVICE_HELP = "Where to run: local and/or device names from `devices:` (or ssh:// URLs); a list runs on each."

GatesSection = Gates  # the recipe's gates are `edgeattn validate`'s, with the same names and defaults


class ValidateSection(Section):
    """Validate every export against an FP32 reference on the eval data."""

    enabled: bool = Field(True, description="false: no validation (and no gates).")
    reference: Literal["pruned", "baseline"] = Field(
        "pruned", description="pruned: the FP32 model each export comes from; baseline: the unpruned model."
    )
    split: Literal["train", "calib", "val"] = Field(
        "val", description="Split of data.eval to validate and evaluate on."
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N eval images.")
    layerwise: bool = Field(True, description="Per-layer drift (where the artifact allows it).")
    explain: int = Field(
        0,
        ge=0,
        le=16,
        description="Heat-map panels (input | reference | export's source checkpoint) of the N images each "
        "export and its reference disagree on most, flipped first: in its validation report and report.md.",
    )
    gates: GatesSection = Field(
        default_factory=GatesSection, description="Thresholds every artifact must meet."
    )
    precision_gates: dict[str, GatesSection] = Field(
        default_factory=dict, description="Gates per precision (e.g. int8), overriding `gates` key by key."
    )
    device: list[str] = Field(default_factory=lambda: ["local"], min_length=1, description=DEVICE_HELP)

    _devices = field_validator("device", mode="before")(_device_names)

    @field_validator("precision_gates")
    @classmethod
    def _known_precisions(cls, v: dict[str, GatesSection]) -> dict[str, GatesSection]:
        known = sorted({p for ps in target_precisions().values() for p in ps})
        for p in v:
            if p not in known:
                raise PydanticCustomError(
                    "bad_precision", "unknown precision — choose from {k}", {"at": p, "k": ", ".join(known)}
                )
        return v

    def gates_for(self, precision: str) -> dict[str, float | None]:
        gates = self.gates.model_dump()
        override = self.precision_gates.get(precision)
        if override is not None:
            gates.update({k: v for k, v in override.model_dump(exclude_unset=True).items()})
        return gates


class BenchSection(BenchConfig):
    """Latency of every export (and, with include_checkpoints, the torch checkpoints) on its runtime."""

    # `runtimes:` (one report each) instead of one `runtime`.
    recipe_excluded: ClassVar[frozenset[str]] = frozenset({"runtime"})

    enabled: bool = Field(True, description="false: no benchmark.")
    runtimes: list[str] = Field(
        default_factory=lambda: ["auto"], min_length=1, description="auto = each artifact's own runtime."
    )
    device: list[str] = Field(default_factory=lambda: ["local"], min_length=1, description=DEVICE_HELP)

    _devices = field_validator("device", mode="before")(_device_names)

    def config(self, runtime: str) -> BenchConfig:
        return BenchConfig.build(
            **self.model_dump(exclude={"enabled", "runtimes", "runtime", "device"}), runtime=runtime
        )


class Recipe(Section):
    """A whole deployment: model → (train) → prune → quantize → export → validate → bench."""

    name: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Output folder name (default: file stem)."
    )
    description: str = Field("", description="One line for the report.")
    seed: int = Field(0, description="Seed of every stage (training, calibration subsets, pruning scores).")
    model: ModelSection = Field(description="The model to deploy.")
    data: DataSection = Field(
        default_factory=DataSection, description="Data-set specs (a string: the same spec for all)."
    )
    train: TrainSection | None = Field(
        None, description="Train the baseline (required without model.checkpoint)."
    )
    prune: PruneSection | None = Field(None, description="Head pruning (left out: no pruning).")
    quantize: QuantizeSection | None = Field(
        None, description="INT8 quantization (required for int8 exports)."
    )
    export: ExportSection = Field(default_factory=ExportSection, description="Targets × precisions.")
    validate_: ValidateSection = Field(
        default_factory=ValidateSection, alias="validate", description="Drift checks and gates."
    )
    bench: BenchSection = Field(default_factory=BenchSection, description="Latency benchmark.")
    devices: dict[str, DeviceSection] = Field(
        default_factory=dict,
        description="Named devices (name: ssh://user@host, or url/ssh_config/timeout) for bench.device, validate.device and quantize.device.",
    )

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True, frozen=True)

    @classmethod
    def known_keys(cls) -> list[str]:
        return [("validate" if k == "validate_" else k) for k in cls.model_fields]

    @field_validator("devices")
    @classmethod
    def _device_names_ok(cls, v: dict[str, DeviceSection]) -> dict[str, DeviceSection]:
        import re

        for name in v:
            if name == "local" or not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", str(name)):
                raise PydanticCustomError(
                    "bad_device_name",
                    "device names are letters, digits, _ . - (and not 'local', which is this machine)",
                    {"at": str(name)},
                )
        return v

    @property
    def validate_cfg(self) -> ValidateSection:
        return self.validate_

    @property
    def prune_enabled(self) -> bool:
        return self.prune is not None and self.prune.enabled

    def to_dict(self) -> dict[str, Any]:
        """The recipe with every default filled in (what the run really used), JSON-able."""
        return self.model_dump(mode="json", by_alias=True)
