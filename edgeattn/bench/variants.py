"""The artifacts the standing benchmark compares, one builder per variant (a registry, in table order).

Accuracy and latency come from two copies of each variant with the same weights: the "eval" copy at
the small resolution the model was trained at (top-1 on builtin:digits val) and the "deploy" copy at
the deployment resolution (latency). edgeattn's stages run once, at the eval resolution, and
`at_resolution` moves the result (FP32, pruned or INT8 with its quantizer scales) to the deployment
resolution. The peer tools quantize an ONNX graph whose shapes are fixed per resolution, so they
calibrate each copy themselves: the eval copy on the same images as edgeattn, the deploy copy on a few
images at the deployment resolution (scales do not change the graph, so not its speed). A stage that is
not installed yet raises `VariantUnavailable` with the reason, which the table shows as skipped."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeattn.bench.artifacts import export_onnx, peer_quantize_static
from edgeattn.bench.peers import nncf_quantize_onnx, ort_quantize_static_documented
from edgeattn.checkpoint import fit_attention_bias_tables, load_checkpoint
from edgeattn.registry import Registry


class VariantUnavailable(Exception):
    """A stage this variant needs is not installed (yet); the reason goes into the table."""


@dataclass
class ModelPlan:
    """One model of the standing benchmark, with everything its variant builders share."""

    name: str
    data: str
    eval_size: int
    deploy_size: int
    eval_ckpt: Path  # trained FP32 checkpoint at eval_size
    deploy_ckpt: Path  # the same weights at deploy_size
    work: Path  # where this model's artifacts go (eval/ and deploy/ below it)
    calib_eval: int = 300  # calibration images for the accuracy copy (both INT8 tools: the same images)
    calib_deploy: int = 32  # the peer tool's latency copy (it cannot move its scales to another resolution)
    max_batch: int = 8
    placement_budget: float = 30.0  # seconds edgeattn's measured placement times groups at deploy_size
    prune_finetune_epochs: int = 1
    seed: int = 0
    transformer: bool = False  # NNCF's peer quantizes it with model_type=TRANSFORMER
    built: dict[str, Any] = field(default_factory=dict)  # artifacts shared between builders

    def path(self, copy: str, name: str) -> Path:
        p = self.work / copy / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p

    def copies(self) -> list[tuple[str, Path, int]]:
        return [("eval", self.eval_ckpt, self.calib_eval), ("deploy", self.deploy_ckpt, self.calib_deploy)]


@dataclass(frozen=True)
class Variant:
    key: str
    label: str  # row label in the tables
    build: Callable[[ModelPlan], tuple[Path, Path]]
    applies: Callable[[str], bool] = lambda model: True


VARIANTS: Registry[Variant] = Registry("standing-benchmark variant")


def variant(key: str, label: str, applies: Callable[[str], bool] | None = None):
    def add(fn: Callable[[ModelPlan], tuple[Path, Path]]) -> Callable[[ModelPlan], tuple[Path, Path]]:
        VARIANTS.register(key, Variant(key, label, fn, applies or (lambda model: True)))
        return fn

    return add


def at_resolution(source: Path, size: int, out: Path) -> Path:
    """The checkpoint (FP32, pruned or INT8) with a model built for `size` x `size` inputs and the same
    weights: MobileViT and attn_vgg take any size as is; EfficientFormer's per-head attention-bias
    tables are resized bicubically. An INT8 checkpoint keeps its quantizer placement and scales
    (they are per tensor / per channel, not per position), so both resolutions run the same INT8 model."""
    import torch

    from edgeattn.checkpoint import read_payload
    from edgeattn.fileio import atomic_output
    from edgeattn.models import InputSpec, ModelConfig, build_model

    payload = read_payload(source)
    config = ModelConfig.from_dict(payload["config"])
    old_size, config.input_size = config.input_size, size
    spec = InputSpec.from_dict(payload["input_spec"])
    spec.size = (size, size)
    state = dict(payload["state_dict"])
    fit_attention_bias_tables(build_model(config), state)
    history = [
        *payload.get("history", []),
        {"step": "resize", "source": source.name, "from_size": old_size, "to_size": size},
    ]
    resized = {
        **payload,
        "config": config.to_dict(),
        "input_spec": spec.to_dict(),
        "state_dict": state,
        "history": history,
        "metrics": {},
    }
    with atomic_output(out) as tmp:
        torch.save(resized, tmp)
    load_checkpoint(out)  # proves the weights fit the model at the new size (raises InputError if not)
    return out


def _stage(module: str, name: str, what: str) -> Any:
    """`module.name`, or VariantUnavailable when that stage is not (completely) installed yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise VariantUnavailable(
            f"{what} ({module}.{name}) is not available in this tree yet: {exc}"
        ) from None


def calibration_images(plan: ModelPlan, spec: Any, count: int) -> Any:
    """The calibration images both INT8 tools get: the first `count` of the calib split's fixed subset
    (uint8; only those are decoded)."""
    from edgeattn.data import load_split

    return load_split(plan.data, "calib", spec.size[0]).subset(count, seed=plan.seed).pixels(spec)


@variant("torch-fp32", "torch eager FP32")
def _torch_fp32(plan: ModelPlan) -> tuple[Path, Path]:
    return plan.eval_ckpt, plan.deploy_ckpt


@variant("ort-fp32", "onnxruntime FP32")
def _ort_fp32(plan: ModelPlan) -> tuple[Path, Path]:
    out = tuple(
        export_onnx(ckpt, plan.path(copy, "fp32.onnx"), max_batch=plan.max_batch)
        for copy, ckpt, _ in plan.copies()
    )
    plan.built["fp32_onnx"] = out
    return out  # type: ignore[return-value]


@variant("ort-int8-edgeattn", "onnxruntime INT8 (edgeattn)")
def _ort_int8_edgeattn(plan: ModelPlan) -> tuple[Path, Path]:
    """Quantized once (at the eval resolution, on calib_eval images) with `--placement measured` timing
    its layer groups at the deployment resolution, as a user deploying at that size would run it; the
    deploy copy is the same INT8 model at the deployment resolution."""
    quantize_checkpoint = _stage("edgeattn.quantize", "quantize_checkpoint", "the quantize stage")
    qckpt = plan.path("eval", "int8.pt")
    report = quantize_checkpoint(
        plan.eval_ckpt, plan.data, qckpt, calib_size=plan.calib_eval, seed=plan.seed, runtime="onnxruntime",
        placement="measured", placement_size=plan.deploy_size, placement_budget=plan.placement_budget,
    )  # fmt: skip
    if report.measured is not None:
        plan.built["placement"] = report.measured.to_dict()
    qdeploy = at_resolution(qckpt, plan.deploy_size, plan.path("deploy", "int8.pt"))
    return (
        _export_int8(qckpt, plan.path("eval", "int8-edgeattn.onnx"), plan.max_batch),
        _export_int8(qdeploy, plan.path("deploy", "int8-edgeattn.onnx"), plan.max_batch),
    )


def _export_int8(qckpt: Path, out: Path, max_batch: int) -> Path:
    """INT8 ONNX with Q/DQ placed for onnxruntime, through the export stage (export_quantized_onnx)."""
    export_artifact = _stage("edgeattn.export", "export_artifact", "the export stage")

    export_artifact(
        qckpt, "onnx", out, precision="int8", dynamic_batch=(1, 1, max_batch), runtime="onnxruntime"
    )
    return out


def _peer(plan: ModelPlan, name: str, quantize: Callable[..., Path]) -> tuple[Path, Path]:
    """A peer tool's INT8 copies: each quantizes that copy's FP32 ONNX on that copy's calibration images."""
    fp32 = plan.built.get("fp32_onnx") or _ort_fp32(plan)
    out = []
    for (copy, ckpt, calib), onnx in zip(plan.copies(), fp32, strict=True):
        images = calibration_images(plan, load_checkpoint(ckpt).input_spec, calib)
        out.append(quantize(onnx, plan.path(copy, name), images, note=f"{len(images)} calib images"))
    return out[0], out[1]


@variant("ort-int8-peer", "onnxruntime INT8 (peer: quantize_static defaults)")
def _ort_int8_peer(plan: ModelPlan) -> tuple[Path, Path]:
    return _peer(plan, "int8-peer.onnx", peer_quantize_static)


@variant("ort-int8-peer-docs", "onnxruntime INT8 (peer: quantize_static, documented CPU settings)")
def _ort_int8_peer_docs(plan: ModelPlan) -> tuple[Path, Path]:
    """quantize_static as onnxruntime's docs advise for this machine's CPU kind (peers.py)."""
    return _peer(plan, "int8-peer-docs.onnx", ort_quantize_static_documented)


@variant("ort-int8-nncf", "onnxruntime INT8 (peer: NNCF ONNX PTQ)")
def _ort_int8_nncf(plan: ModelPlan) -> tuple[Path, Path]:
    """NNCF's own ONNX post-training quantization (model_type=TRANSFORMER for transformers)."""

    def quantize(onnx: Path, out: Path, images: Any, note: str) -> Path:
        return nncf_quantize_onnx(onnx, out, images, transformer=plan.transformer, note=note)

    return _peer(plan, "int8-nncf.onnx", quantize)


@variant("ort-fp32-pruned", "onnxruntime FP32, 50% heads pruned")
def _ort_fp32_pruned(plan: ModelPlan) -> tuple[Path, Path]:
    prune_checkpoint = _stage("edgeattn.prune", "prune_checkpoint", "the prune stage")

    pruned_eval = plan.path("eval", "pruned.pt")
    prune_checkpoint(
        plan.eval_ckpt,
        plan.data,
        pruned_eval,
        ratio=0.5,
        finetune_epochs=plan.prune_finetune_epochs,
        seed=plan.seed,
    )
    pruned_deploy = at_resolution(pruned_eval, plan.deploy_size, plan.path("deploy", "pruned.pt"))
    plan.built["pruned_deploy_ckpt"] = pruned_deploy
    return (
        export_onnx(pruned_eval, plan.path("eval", "pruned.onnx"), max_batch=plan.max_batch),
        export_onnx(pruned_deploy, plan.path("deploy", "pruned.onnx"), max_batch=plan.max_batch),
    )
