"""`explain_checkpoint` / `compare_checkpoints`: heat maps of one or two checkpoints, written as PNGs.

Any checkpoint kind loads (FP32, pruned, INT8 fake-quant: NNCF's quantizers pass gradients straight
through, so Grad-CAM works on them unchanged). In a comparison both models explain the same class —
the one the first model (the reference) predicts — so their maps answer the same question.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeattn.checkpoint import ModelHandle, class_names_of, load_checkpoint
from edgeattn.data.config import DataConfig
from edgeattn.errors import InputError
from edgeattn.explain.config import ExplainConfig
from edgeattn.explain.families import CAM_FAMILIES
from edgeattn.explain.methods import METHODS, Explanation, Subject
from edgeattn.explain.render import Tile, grid_markdown, overlay, plain, save_panel
from edgeattn.explain.similarity import pearson, top_iou
from edgeattn.fileio import atomic_output, json_default
from edgeattn.models import model_spec

BATCH = 16


@dataclass
class Inputs:
    images: torch.Tensor  # (B, 3, H, W) in [0, 1] at the model's input size
    labels: list[int | None]
    names: list[str]  # where each image came from
    classes: list[str]
    head_labels: dict[str, list[int]] = field(default_factory=dict)  # kept heads of pruned blocks


@dataclass
class ExplainedImage:
    name: str
    panel: str  # PNG file name inside the output folder
    true: str | None
    predicted: str
    confidence: float
    predicted_b: str | None = None
    pearson: float | None = None
    iou: float | None = None


@dataclass
class ExplainReport:
    checkpoint: str
    method: str
    layer: str
    out: Path
    images: list[ExplainedImage]
    compare: str | None = None
    layer_b: str | None = None
    top_percent: float = 20.0
    heads: list[int] | None = None  # the heads shown (--heads), numbered as in the unpruned model
    heat: np.ndarray | None = field(default=None, repr=False)  # (B, H, W) of the first model
    heat_b: np.ndarray | None = field(default=None, repr=False)

    @property
    def mean_pearson(self) -> float | None:
        vals = [i.pearson for i in self.images if i.pearson is not None]
        return float(np.mean(vals)) if vals else None

    @property
    def mean_iou(self) -> float | None:
        vals = [i.iou for i in self.images if i.iou is not None]
        return float(np.mean(vals)) if vals else None

    def to_dict(self) -> dict[str, Any]:
        keys = ("checkpoint", "method", "layer", "compare", "layer_b", "top_percent", "heads")
        d: dict[str, Any] = {k: getattr(self, k) for k in keys}
        d.update(out=str(self.out), mean_pearson=self.mean_pearson, mean_iou=self.mean_iou)
        d["images"] = [json_default(i) for i in self.images]
        return d


def load_handle(path: Path) -> ModelHandle:
    handle = load_checkpoint(path)
    handle.module.eval()
    for p in handle.module.parameters():
        if p.is_floating_point():  # CAMs need gradients to reach the target layer
            p.requires_grad_(True)
    return handle


def class_names(handle: ModelHandle, data_classes: list[str]) -> list[str]:
    """The names `edgeattn train` recorded, else the data set's, else "class i"."""
    n = int(handle.config.num_classes)
    names = class_names_of(handle) or (data_classes if len(data_classes) == n else [])
    return names or [f"class {i}" for i in range(n)]


def load_inputs(
    handle: ModelHandle,
    data: str | None,
    files: list[Path],
    config: ExplainConfig,
    options: DataConfig | None = None,
) -> Inputs:
    """The images to explain, resized and cropped exactly as the model's input spec says (`options`:
    how a data set's images are read)."""
    from edgeattn.data import load_split
    from edgeattn.data.imageset import resize_uint8

    spec = handle.input_spec
    if files:
        from edgeattn.data import FileSet

        pixels = FileSet(
            [(str(f), -1) for f in files], [], source="--image", options=options or DataConfig()
        ).pixels(spec)
        images = pixels.float() / 255.0  # timm's eval transform, as for a data set
        return Inputs(images, [None] * len(files), [Path(f).name for f in files], [])
    if not data:
        raise InputError("nothing to explain", "give --data SPEC (with --images N) or --image FILE")
    split = load_split(data, config.split, spec.size[0], options).subset(config.images)
    images = resize_uint8(split.pixels(spec), spec) / 255.0
    names = [f"{config.split}[{i}]" for i in range(len(split))]
    return Inputs(images, [int(v) for v in split.labels], names, list(split.classes))


def explain_batch(
    handle: ModelHandle, images: torch.Tensor, targets: list[int] | None, config: ExplainConfig
) -> tuple[Explanation, torch.Tensor]:
    """Heat maps of `images` ([0, 1]) for `targets` (default: the model's own predictions), plus the
    softmax probabilities."""
    from edgeattn.data import normalize

    family = CAM_FAMILIES.get(model_spec(handle.config.name).family)
    method = METHODS.get(config.method)
    parts, probs = [], []
    for i in range(0, len(images), BATCH):
        x = normalize(images[i : i + BATCH], handle.input_spec)
        with torch.no_grad():
            p = handle.module(x).float().softmax(-1)
        t = targets[i : i + BATCH] if targets is not None else p.argmax(-1).tolist()
        subject = Subject(handle.module, family, handle.config.name, x, [int(v) for v in t])
        parts.append(method.explain(subject, config.layer, config.heads))
        probs.append(p)
    heads = [e.heads for e in parts]
    return (
        Explanation(
            np.concatenate([e.heat for e in parts]),
            parts[0].layer,
            np.concatenate(heads) if all(h is not None for h in heads) else None,
        ),
        torch.cat(probs),
    )


def explain_checkpoint(
    ckpt: Path | str,
    data: str | None,
    out: Path | str,
    config: ExplainConfig | None = None,
    files: list[Path] | None = None,
    compare: Path | str | None = None,
    data_options: DataConfig | None = None,
    **overrides: Any,
) -> ExplainReport:
    """Explain `ckpt` on images of `data` (or `files`); with `compare`, explain that checkpoint on the
    same images and classes and measure how alike the two maps are. `data_options` say how images are
    read (workers, class map, bad files)."""
    config = ExplainConfig.build(config, **overrides)
    METHODS.get(config.method)  # unknown method: did-you-mean, before any work
    handle = load_handle(Path(ckpt))
    inputs = load_inputs(handle, data, list(files or []), config, data_options)
    names = class_names(handle, inputs.classes)
    inputs.head_labels = {k: list(v) for k, v in (handle.config.heads_kept or {}).items()}
    expl, probs = explain_batch(handle, inputs.images, None, config)
    preds = probs.argmax(-1).tolist()
    expl_b = probs_b = None
    if compare is not None:
        other = load_handle(Path(compare))
        if other.input_spec.size != handle.input_spec.size:
            raise InputError(
                f"{compare} takes {other.input_spec.size} inputs, {ckpt} takes {handle.input_spec.size}",
                "compare checkpoints of the same model (e.g. FP32 vs its pruned or INT8 version)",
            )
        expl_b, probs_b = explain_batch(other, inputs.images, preds, config)
    report = ExplainReport(
        checkpoint=str(ckpt),
        method=config.method,
        layer=expl.layer,
        out=Path(out),
        images=[],
        compare=str(compare) if compare else None,
        layer_b=expl_b.layer if expl_b else None,
        top_percent=config.top_percent,
        heat=expl.heat,
        heat_b=expl_b.heat if expl_b else None,
    )
    if expl.heads is not None:
        report.heads = inputs.head_labels.get(expl.layer) or list(range(expl.heads.shape[1]))
    with atomic_output(out) as tmp:
        tmp.mkdir()
        for i in range(len(inputs.images)):
            report.images.append(write_panel(tmp, i, inputs, names, expl, probs, expl_b, probs_b, config))
        (tmp / "index.md").write_text(index_markdown(report), encoding="utf-8")
        (tmp / "explain.json").write_text(json.dumps(report.to_dict(), indent=2, default=json_default) + "\n")
    return report


def write_panel(
    folder: Path,
    i: int,
    inputs: Inputs,
    names: list[str],
    expl: Explanation,
    probs: torch.Tensor,
    expl_b: Explanation | None,
    probs_b: torch.Tensor | None,
    config: ExplainConfig,
) -> ExplainedImage:
    img = inputs.images[i].numpy()
    label = inputs.labels[i]
    pred = int(probs[i].argmax())
    item = ExplainedImage(
        inputs.names[i], f"{i:03d}.png", names[label] if label is not None else None, names[pred],
        float(probs[i, pred]),
    )  # fmt: skip
    true = f" · true {item.true}" if item.true is not None else ""
    tiles = [Tile(f"{item.name}{true}", plain(img)), Tile(f"A: {item.predicted} {item.confidence:.0%}",
             overlay(img, expl.heat[i], config.alpha))]  # fmt: skip
    if expl.heads is not None:  # numbered as in the unpruned model, like the pruning report
        labels = inputs.head_labels.get(expl.layer) or list(range(len(expl.heads[i])))
        tiles += [
            Tile(f"head {h}", overlay(img, m, config.alpha))
            for h, m in zip(labels, expl.heads[i], strict=True)
        ]
    if expl_b is not None and probs_b is not None:
        pred_b = int(probs_b[i].argmax())
        item.predicted_b = names[pred_b] if pred_b < len(names) else f"class {pred_b}"
        item.pearson = pearson(expl.heat[i], expl_b.heat[i])
        item.iou = top_iou(expl.heat[i], expl_b.heat[i], config.top_percent)
        tiles.append(Tile(f"B: {item.predicted_b} · r={item.pearson:.2f} IoU={item.iou:.2f}",
                          overlay(img, expl_b.heat[i], config.alpha)))  # fmt: skip
    save_panel(folder / item.panel, tiles)
    return item


def index_markdown(report: ExplainReport) -> str:
    lines = [f"# {report.method} of {Path(report.checkpoint).name}", "", f"Layer: `{report.layer}`."]
    if report.compare:
        lines += [
            f"Compared with {Path(report.compare).name} (layer `{report.layer_b}`), both explaining the "
            "class the first model predicts:",
            f"mean Pearson r = {report.mean_pearson:.3f}, mean IoU of the top {report.top_percent:g}% = "
            f"{report.mean_iou:.3f}.",
        ]
    lines.append("")
    cells = []
    for item in report.images:
        cap = f"{item.name}: {item.predicted}" + (f" (true {item.true})" if item.true else "")
        if item.pearson is not None:
            cap += f", B {item.predicted_b}, r={item.pearson:.2f}, IoU={item.iou:.2f}"
        cells.append((item.panel, cap))
    return "\n".join(lines) + "\n" + grid_markdown(cells)
