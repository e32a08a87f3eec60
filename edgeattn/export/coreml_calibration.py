"""Core ML INT8 activations: calibration statistics (Core ML predictions on macOS, or edgeattn's Core
ML reference executor elsewhere: `ACTIVATION_CALIBRATORS`) fed to coremltools' quantize/dequantize
insertion passes — the part of the Core ML export that `--precision int8` adds."""

from __future__ import annotations

import contextlib
import io
import logging
import platform
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgeattn.errors import UnavailableError
from edgeattn.export.base import ExportRequest
from edgeattn.registry import Registry


def on_macos() -> bool:
    return platform.system() == "Darwin"


@contextlib.contextmanager
def muted() -> Iterator[io.StringIO]:
    """coremltools prints version warnings on import and a tqdm bar per graph pass (to stderr, which
    tqdm resolves at call time); capture them so the CLI shows only edgeattn's own progress."""
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("coremltools", "coremltools.converters", "coremltools.optimize"):
            logging.getLogger(name).setLevel(logging.ERROR)
        yield sink


def folds_normalization(req: ExportRequest) -> bool:
    """Whether the package takes 0..255 pixels with the normalisation folded in."""
    fold = req.options.get("fold_normalization")
    return req.options["input"] == "image" if fold is None else bool(fold)


def calibration_samples(req: ExportRequest) -> list[np.ndarray]:
    """Calibration inputs (1, C, H, W) from the calib split, in the units the package takes (0..255
    pixels when normalisation is folded in, normalised values otherwise)."""
    from edgeattn.data import load_split
    from edgeattn.data.imageset import normalize, resize_uint8

    spec = req.handle.input_spec
    data = load_split(str(req.data), "calib", spec.size[0]).subset(int(req.options["calib_size"]))
    pixels = resize_uint8(data.pixels(spec), spec)
    x = pixels.round().clamp(0, 255) if folds_normalization(req) else normalize(pixels / 255.0, spec)
    return [x[i : i + 1].numpy().astype(np.float32) for i in range(len(x))]


ActivationCalibrator = Callable[[Any, list[np.ndarray]], dict[str, dict[str, float]]]
ACTIVATION_CALIBRATORS: Registry[ActivationCalibrator] = Registry("Core ML activation calibrator")


@ACTIVATION_CALIBRATORS.register("coreml")
def _calibrate_with_coreml(ml: Any, samples: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """coremltools' own calibration: Core ML predictions of every intermediate output (macOS only)."""
    from coremltools.optimize.coreml.experimental._post_training_quantization import (
        _get_activation_calibration_stats,
    )

    if not on_macos():
        raise UnavailableError(
            "the coreml calibrator runs Core ML predictions, which exist only on macOS",
            "use --coreml-calibrator reference",
        )
    spec = ml.get_spec()
    name = spec.description.input[0].name
    image = spec.description.input[0].type.WhichOneof("Type") == "imageType"
    feeds = []
    for x in samples:
        if image:
            from PIL import Image

            feeds.append({name: Image.fromarray(x[0].transpose(1, 2, 0).astype(np.uint8))})
        else:
            feeds.append({name: x})
    with muted():
        return dict(_get_activation_calibration_stats(ml, feeds))


@ACTIVATION_CALIBRATORS.register("reference")
def _calibrate_with_reference_executor(ml: Any, samples: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """The same statistics (min/max of every non-const op output over the calibration samples),
    computed by running the saved program op by op in edgeattn's Core ML reference executor — the
    Linux stand-in for Core ML predictions. Inputs of a concat share one range, as coremltools does."""
    from coremltools.optimize.coreml.experimental._post_training_quantization import (
        _adjust_concat_surrounding_activation_stats,
    )

    from edgeattn.runtime.coreml_ref import load_program
    from edgeattn.runtime.coreml_ref.program import execute_step

    stats: dict[str, dict[str, float]] = {}

    def update(name: str, value: Any) -> None:
        if not isinstance(value, torch.Tensor) or not value.is_floating_point() or value.numel() == 0:
            return
        lo, hi = float(value.min()), float(value.max())
        entry = stats.setdefault(name, {"rmin": lo, "rmax": hi})
        entry["rmin"], entry["rmax"] = min(entry["rmin"], lo), max(entry["rmax"], hi)

    with tempfile.TemporaryDirectory(prefix="edgeattn-calib-") as tmp:
        path = Path(tmp) / "calibrate.mlpackage"
        with muted():
            ml.save(str(path))
        program = load_program(path)
        inp = program.inputs[0]
        outputs = set(program.outputs)
        with torch.no_grad():
            for x in samples:
                env: dict[str, Any] = dict(program.constants)
                env[inp.name] = program._feed(inp, x)
                update(inp.name, env[inp.name])
                for step in program.steps:
                    execute_step(step, env)
                    for name, _ in step.outputs:
                        if name not in outputs:
                            update(name, env[name])
        concats = [
            [b.name for b in step.inputs.get("values", []) if b.name] + [step.outputs[0][0]]
            for step in program.steps
            if step.type == "concat"
        ]
    _adjust_concat_surrounding_activation_stats(concats, stats)
    return stats


def quantize_activations(ml: Any, req: ExportRequest) -> tuple[Any, str]:
    """INT8 activations: coremltools' own quantize/dequantize insertion passes (the ones
    `linear_quantize_activations` runs) fed with the calibration statistics."""
    import coremltools.optimize as cto
    from coremltools import _SPECIFICATION_VERSION_IOS_17
    from coremltools.converters.mil.frontend.milproto import load as milproto_load
    from coremltools.converters.mil.mil.passes.graph_pass import PassOption
    from coremltools.converters.mil.mil.passes.pass_registry import PASS_REGISTRY
    from coremltools.models import utils as model_utils

    name = str(req.options["calibrator"])
    if name == "auto":
        name = "coreml" if on_macos() else "reference"
    stats = ACTIVATION_CALIBRATORS.get(name)(ml, calibration_samples(req))
    config = cto.coreml.OptimizationConfig(
        global_config=cto.coreml.OpLinearQuantizerConfig(mode="linear_symmetric", dtype="int8")
    )
    passes = []
    for pass_name in (
        "compression::insert_prefix_quantize_dequantize_pair",
        "compression::insert_suffix_quantize_dequantize_pair",
    ):
        graph_pass = PASS_REGISTRY[pass_name]
        graph_pass.set_options([PassOption("config", config)])
        graph_pass.set_options([PassOption("activation_stats", stats)])
        passes.append(graph_pass)
    passes.append(PASS_REGISTRY["common::dequantize_quantize_pair_elimination"])
    with muted():
        quantized = model_utils._apply_graph_pass(
            ml,
            passes,
            spec_version=_SPECIFICATION_VERSION_IOS_17,
            pymil_load_func=milproto_load.load,
            skip_model_load=not on_macos(),
        )
    return quantized, name
