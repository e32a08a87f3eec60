"""Core ML: ML Program packages written from the torch.export program, inspected from the saved spec,
and run (Core ML on macOS, edgeattn's Core ML reference executor elsewhere). Conversions take ~10 s
each, so the full family matrix is `slow`."""

from __future__ import annotations

import platform

import numpy as np
import pytest
import torch
from helpers.models import TINY, tiny_config
from helpers.numeric import assert_input_sensitive, close

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data.imageset import preprocess
from edgeattn.export import export_artifact
from edgeattn.manifest import read_manifest
from edgeattn.runtime import open_runner

ct = pytest.importorskip("coremltools")


def make_ckpt(tmp_path, key: str, **changes):
    torch.manual_seed(0)
    cfg = tiny_config(key)
    for k, v in changes.items():
        setattr(cfg, k, v)
    path = tmp_path / f"{key}.pt"
    save_checkpoint(ModelHandle.new(cfg), path)
    return path


def program_ops(path) -> dict[str, int]:
    """Op histogram of the saved package, read with coremltools directly (not through the exporter)."""
    spec = ct.utils.load_spec(str(path))
    assert spec.WhichOneof("Type") == "mlProgram"
    ops: dict[str, int] = {}
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    return ops


def torch_reference(handle, images: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return handle.module.eval()(preprocess(images, handle.input_spec)).numpy()


def digits(n: int, size: int = 32) -> torch.Tensor:
    """n real validation images as 0..255 uint8 (what an image input receives)."""
    from edgeattn.data import load_split

    return load_split("builtin:digits", "val", size).subset(n).images


def wrongly_normalised(handle) -> object:
    """The same model with the input normalisation left out (mean 0, std 1): a negative control."""
    import copy
    import dataclasses

    wrong = copy.copy(handle)
    wrong.input_spec = dataclasses.replace(handle.input_spec, mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))
    return wrong


def weight_scales(path) -> list[int]:
    """Number of scale values of every constexpr weight dequantization in the saved package (the
    iOS16/17 `constexpr_affine_dequantize` keeps its scale as an attribute)."""
    spec = ct.utils.load_spec(str(path))
    sizes = []
    for fn in spec.mlProgram.functions.values():
        for block in fn.block_specializations.values():
            for op in block.operations:
                if op.type == "constexpr_affine_dequantize":
                    dims = op.attributes["scale"].type.tensorType.dimensions
                    sizes.append(int(np.prod([d.constant.size for d in dims])))
    return sizes


def test_fp16_image_input_with_folded_normalisation(tmp_path, trained):
    ckpt = trained("attn_vgg11_linear")  # trained: its logits depend on the input
    out = tmp_path / "lin.mlpackage"
    manifest = export_artifact(ckpt, "coreml", out)
    assert out.is_dir() and manifest.precision == "fp16" and manifest.image_input is True
    spec = ct.utils.load_spec(str(out))
    assert [i.name for i in spec.description.input] == ["input"]
    assert [o.name for o in spec.description.output] == ["logits"]
    image = spec.description.input[0].type.imageType
    assert (image.width, image.height) == (32, 32)
    assert image.colorSpace == ct.proto.FeatureTypes_pb2.ImageFeatureType.RGB
    ops = program_ops(out)
    assert ops["elu"] == 2 * 5 and ops["conv"] >= 8  # phi(q), phi(k): the 5 blocks stay linear attention
    assert spec.specificationVersion == 7  # iOS16, the default deployment target
    assert read_manifest(out).details["program"]["ops"] == ops
    assert manifest.details["compute_precision"] == "fp16" and manifest.details["normalization_folded"]
    # 0..255 pixels in (normalisation folded into the program) must classify like torch on the
    # normalised input: Core ML on macOS, the reference executor elsewhere.
    images = digits(12)
    handle = load_checkpoint(ckpt)
    got = open_runner(out).predict(images)
    ref = torch_reference(handle, images)
    assert_input_sensitive(ref)
    assert close(got, ref, 0.05) and (got.argmax(1) == ref.argmax(1)).mean() >= 11 / 12
    # negative control: the same check rejects the model without its normalisation
    assert not close(got, torch_reference(wrongly_normalised(handle), images), 0.05)


def test_int8_weights_tensor_input_dynamic_batch(tmp_path, trained):
    ckpt = trained("attn_vgg11_se")
    out = tmp_path / "se.mlpackage"
    manifest = export_artifact(
        ckpt,
        "coreml",
        out,
        precision="int8-weights",
        input="tensor",
        dynamic_batch=(1, 2, 8),
        deployment_target="iOS17",
    )
    ops = program_ops(out)
    assert ops.get("constexpr_affine_dequantize", 0) + ops.get("constexpr_blockwise_shift_scale", 0) >= 5
    scales = weight_scales(out)
    assert scales and all(n > 1 for n in scales), f"weights must have per-channel scales, got {scales}"
    spec = ct.utils.load_spec(str(out))
    arr = spec.description.input[0].type.multiArrayType
    assert arr.shapeRange.sizeRanges[0].lowerBound == 1 and arr.shapeRange.sizeRanges[0].upperBound == 8
    assert spec.specificationVersion == 8
    assert manifest.image_input is False and manifest.input_shape == ["batch", 3, 32, 32]
    assert manifest.details["weights"].startswith("int8")
    images = digits(5)
    got = open_runner(out).predict(images)
    handle = load_checkpoint(ckpt)
    ref = torch_reference(handle, images)
    assert_input_sensitive(ref)
    assert got.shape == (5, 10) and close(got, ref, 0.1)
    # negative control: a model with scrambled weights is rejected by the same check
    torch.manual_seed(1)
    with torch.no_grad():
        for p in handle.module.parameters():
            p.copy_(p.flatten()[torch.randperm(p.numel())].view_as(p))
    assert not close(got, torch_reference(handle, images), 0.1)


@pytest.mark.slow
def test_pruned_checkpoint_exports_to_coreml(tmp_path):
    heads = {"stages.0.attn": [1, 2], "stages.1.attn": [], "stages.4.attn": [0]}
    ckpt = make_ckpt(tmp_path, "attn_vgg11_linear", heads_kept=heads)
    manifest = export_artifact(ckpt, "coreml", tmp_path / "p.mlpackage", input="tensor")
    assert manifest.model["heads_kept"] == heads
    assert load_checkpoint(ckpt).module.stages[1]["attn"].num_heads == 0
    assert program_ops(tmp_path / "p.mlpackage")["elu"] == 2 * 4  # phi(q), phi(k) in the 4 blocks with heads


@pytest.mark.slow
@pytest.mark.parametrize("key", list(TINY))
@pytest.mark.parametrize("precision", ["fp16", "int8-weights"])
def test_every_family_to_coreml(tmp_path, key, precision):
    ckpt = make_ckpt(tmp_path, key)
    out = tmp_path / "m.mlpackage"
    manifest = export_artifact(ckpt, "coreml", out, precision=precision)
    ops = program_ops(out)
    assert manifest.details["program"]["n_ops"] == sum(ops.values())
    if precision == "int8-weights":
        assert any(op.startswith("constexpr") for op in ops)
    images = torch.randint(0, 256, (2, 3, *manifest.input_shape[2:]), dtype=torch.uint8)
    got = open_runner(out).predict(images)
    ref = torch_reference(load_checkpoint(ckpt), images)
    assert np.max(np.abs(got - ref)) <= 0.1 * max(1.0, float(np.abs(ref).max()))


@pytest.mark.macos
@pytest.mark.skipif(platform.system() != "Darwin", reason="MLModel.predict exists only on macOS")
@pytest.mark.parametrize("coreml_input", ["image", "tensor"])
def test_macos_predictions(tmp_path, trained, coreml_input):
    from PIL import Image

    from edgeattn.data import load_split
    from edgeattn.data.imageset import normalize, resize_uint8

    ckpt = trained("attn_vgg11_linear")
    handle = load_checkpoint(ckpt)
    out = tmp_path / "m.mlpackage"
    manifest = export_artifact(ckpt, "coreml", out, input=coreml_input)
    assert manifest.details["predict_check"] == "Core ML (macOS)"
    model = ct.models.MLModel(str(out))
    val = load_split("builtin:digits", "val", 32).subset(32)
    pixels = resize_uint8(val.images, handle.input_spec)
    ref = torch_reference(handle, val.images)
    agree = 0
    for i in range(len(pixels)):
        if coreml_input == "image":
            feed = Image.fromarray(pixels[i].permute(1, 2, 0).round().byte().numpy())
        else:
            feed = normalize(pixels[i : i + 1] / 255.0, handle.input_spec).numpy()
        agree += int(np.asarray(model.predict({"input": feed})["logits"]).argmax() == ref[i].argmax())
    assert agree / len(pixels) >= 0.95
