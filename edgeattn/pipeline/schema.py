"""The recipe schema: what one YAML file may say, with every default written down here.

A recipe is checked completely before any work starts: unknown keys (with a did-you-mean), wrong
types, out-of-range values, target × precision pairs that cannot exist and missing files are all
reported with the key's path (`prune.ratio`, `export.targets[1].precisions[0]`). Paths in a recipe are
relative to the recipe file's folder, so a recipe means the same thing from any working directory.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from edgeattn.validate.gates import Gates

_GATE_DEFAULTS = Gates()  # the recipe's gate defaults are `edgeattn validate`'s, from one place

# Which precisions each export target can produce (the exporters' own lists; a test keeps them equal).
# int8 (weights and activations) is exported from each quantized checkpoint, so it needs a `quantize`
# section; the others (Core ML's weight-only int8-weights too) from the FP32 (pruned) checkpoint.
TARGET_PRECISIONS: dict[str, tuple[str, ...]] = {
    "onnx": ("fp32", "fp16", "int8"),
    "tensorrt": ("fp32", "fp16", "int8"),
    "coreml": ("fp32", "fp16", "int8-weights", "int8"),
}
QUANTIZED_PRECISIONS = ("int8",)
# The Q/DQ placement (see edgeattn.quantize.placement) each target's int8 artifact is quantized for.
# Core ML converts the quantized model's float weights and quantizes them itself: any placement does.
TARGET_PLACEMENT = {"onnx": "onnxruntime", "tensorrt": "tensorrt", "coreml": "onnxruntime"}
QUANT_METHODS = ("ptq", "qat")


def refuse_unknown_keys(data: Any, known: list[str]) -> Any:
    """A typo must not silently switch something off: unknown keys are errors with a did-you-mean."""
    if isinstance(data, dict):
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.5)
                hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
                raise PydanticCustomError(
                    "unknown_key", "unknown key — {hint}", {"hint": hint, "at": str(key)}
                )
    return data


class Section(BaseModel):
    """Base of every recipe section: unknown keys are errors, with the closest known key suggested."""

    model_config = ConfigDict(extra="forbid", validate_default=True, frozen=False)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        return refuse_unknown_keys(data, list(cls.model_fields))


class ModelSection(Section):
    """The model: a zoo `name` (trained by the `train` section) or an existing `checkpoint`."""

    name: str | None = Field(
        None, description="Zoo name (mobilevit_xxs, efficientformer_l1, attn_vgg11, ...)."
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


class TrainSection(Section):
    """Train the baseline (only when model.checkpoint is not given)."""

    epochs: int = Field(
        8, ge=1, le=1000, description="Training epochs (AdamW, cosine schedule, label smoothing)."
    )
    batch_size: int = Field(64, ge=1, le=4096, description="Training batch size.")
    lr: float = Field(2e-3, gt=0, le=1, description="Peak learning rate.")
    teacher: Path | None = Field(None, description="Distil from this checkpoint.")


class PruneSection(Section):
    """Structured head pruning. Give exactly one of ratio, heads, target_macs."""

    enabled: bool = Field(True, description="false: keep every head (same as leaving the section out).")
    ratio: float | None = Field(None, gt=0, lt=1, description="Fraction of attention heads to remove.")
    heads: int | None = Field(None, ge=1, description="Number of heads to remove.")
    target_macs: float | None = Field(
        None, gt=0, description="Prune until the model has at most this many MACs."
    )
    importance: str = Field("taylor", description="Head importance score (taylor, l1, entropy, random).")
    normalize: Literal["none", "layer"] = Field(
        "none", description="taylor scores: none (rank in loss units) or layer (L2 per layer, Michel et al.)."
    )
    scope: str = Field(
        "global", description="global: rank heads across blocks; per-layer: the same share per block."
    )
    min_heads_per_block: int = Field(1, ge=1, description="Heads every attention block keeps at least.")
    finetune_epochs: int = Field(
        0, ge=0, le=1000, description="Recovery fine-tuning epochs after pruning (0: none)."
    )
    distill: bool = Field(True, description="Fine-tune with the unpruned model as teacher.")
    iterative_steps: int = Field(
        1, ge=1, le=100, description="Prune in this many rounds, re-scoring heads in between."
    )
    calib_size: int | None = Field(
        512, ge=1, description="Images the importance scores are computed on (null: all)."
    )
    val_size: int | None = Field(
        None, ge=1, description="Images the before/after accuracy is measured on (null: all)."
    )
    finetune_lr: float = Field(1e-3, gt=0, le=1, description="Fine-tuning learning rate.")

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


class QuantMethod(Section):
    """Options of one quantization method (PTQ or QAT)."""

    calib_size: int = Field(300, ge=1, le=100_000, description="Calibration images.")
    preset: Literal["performance", "mixed"] = Field(
        "performance", description="performance: symmetric; mixed: asymmetric activations."
    )
    smooth_quant: bool | None = Field(
        None, description="SmoothQuant for transformer blocks (null: the quantizer decides)."
    )
    bias_correction: bool = Field(True, description="Correct the bias shift quantization adds.")
    ignored: list[str] = Field(default_factory=list, description="Module name patterns kept in FP32.")
    max_drop: float | None = Field(None, ge=0, le=100, description="Accuracy-aware: max top-1 drop (points).")
    epochs: int = Field(2, ge=1, le=1000, description="QAT fine-tuning epochs (QAT only).")
    lr: float = Field(1e-4, gt=0, le=1, description="QAT learning rate (QAT only).")
    batch_size: int = Field(64, ge=1, le=4096, description="QAT batch size (QAT only).")


class QuantizeSection(Section):
    """INT8 quantization. Each method that is present (even as `{}`) is run: ptq, qat or both — once
    per Q/DQ placement the int8 exports need (onnxruntime for onnx/coreml, tensorrt for tensorrt)."""

    ptq: QuantMethod | None = Field(None, description="Post-training quantization (calibration only).")
    qat: QuantMethod | None = Field(
        None, description="Quantization-aware training (calibration, then fine-tuning)."
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
        if v not in TARGET_PRECISIONS:
            close = difflib.get_close_matches(v, list(TARGET_PRECISIONS), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise PydanticCustomError(
                "unknown_target",
                "unknown target '{v}' — {hint}choose one of {choices}",
                {"v": v, "hint": hint, "choices": ", ".join(TARGET_PRECISIONS)},
            )
        return v

    @model_validator(mode="after")
    def _precisions_exist(self) -> ExportTarget:
        allowed = TARGET_PRECISIONS[self.target]
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


class ExportSection(Section):
    """What to export. int8 artifacts are made from every quantized checkpoint (PTQ and/or QAT)."""

    targets: list[ExportTarget] = Field(
        default_factory=lambda: [ExportTarget(target="onnx")], min_length=1, description="What to export."
    )
    opset: int = Field(17, ge=13, le=23, description="ONNX opset (also of the ONNX TensorRT builds from).")
    batch: int = Field(1, ge=1, le=4096, description="Static batch size (when dynamic_batch is not given).")
    dynamic_batch: tuple[int, int, int] | None = Field(
        None, description="[min, opt, max] batch (ONNX/TensorRT)."
    )

    @field_validator("dynamic_batch")
    @classmethod
    def _ordered(cls, v: tuple[int, int, int] | None) -> tuple[int, int, int] | None:
        if v is not None and not (1 <= v[0] <= v[1] <= v[2]):
            raise PydanticCustomError("bad_batch", "must be [min, opt, max] with 1 <= min <= opt <= max")
        return v


class GatesSection(Section):
    """Pass/fail thresholds against the FP32 reference (the gates of `edgeattn validate`; same names and
    defaults). null switches a gate off."""

    max_top1_drop: float | None = Field(
        _GATE_DEFAULTS.max_top1_drop, ge=0, le=100, description="Top-1 points the artifact may lose."
    )
    min_agreement: float | None = Field(
        _GATE_DEFAULTS.min_agreement, ge=0, le=100, description="% of images with the same top-1 class."
    )
    max_kl: float | None = Field(
        _GATE_DEFAULTS.max_kl,
        ge=0,
        le=100,
        description="Mean KL(reference || artifact) of the softmax, nats.",
    )
    min_cosine: float | None = Field(
        None, ge=-1, le=1, description="Mean per-image cosine similarity of the logits."
    )
    max_mean_abs_logit_error: float | None = Field(None, ge=0, description="Mean absolute logit error.")


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
    gates: GatesSection = Field(
        default_factory=GatesSection, description="Thresholds every artifact must meet."
    )
    precision_gates: dict[str, GatesSection] = Field(
        default_factory=dict, description="Gates per precision (e.g. int8), overriding `gates` key by key."
    )

    @field_validator("precision_gates")
    @classmethod
    def _known_precisions(cls, v: dict[str, GatesSection]) -> dict[str, GatesSection]:
        known = sorted({p for ps in TARGET_PRECISIONS.values() for p in ps})
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


class BenchSection(Section):
    """Latency of every export (and, with include_checkpoints, the torch checkpoints) on its runtime."""

    enabled: bool = Field(True, description="false: no benchmark.")
    runtimes: list[str] = Field(
        default_factory=lambda: ["auto"], min_length=1, description="auto = each artifact's own runtime."
    )
    batches: list[int] = Field(default_factory=lambda: [1], min_length=1, description="Batch sizes to time.")
    threads: int = Field(2, ge=1, le=256, description="Intra-op threads of every runtime.")
    warmup: int = Field(10, ge=0, le=10_000, description="Untimed runs first.")
    iters: int | None = Field(50, ge=1, le=1_000_000, description="Timed runs per artifact and batch size.")
    seconds: float | None = Field(
        None, gt=0, le=3600, description="Time each artifact this long instead of `iters`."
    )
    isolate: bool = Field(
        True,
        description="Each artifact in a fresh process (own peak memory, no shared thread pools); false is faster.",
    )

    @field_validator("batches")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(b < 1 for b in v):
            raise PydanticCustomError("bad_batch", "batch sizes must be >= 1")
        return v


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

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _unknown_keys(cls, data: Any) -> Any:
        return refuse_unknown_keys(data, [("validate" if k == "validate_" else k) for k in cls.model_fields])

    @property
    def validate_cfg(self) -> ValidateSection:
        return self.validate_

    @property
    def prune_enabled(self) -> bool:
        return self.prune is not None and self.prune.enabled

    def to_dict(self) -> dict[str, Any]:
        """The recipe with every default filled in (what the run really used), JSON-able."""
        return self.model_dump(mode="json", by_alias=True)
