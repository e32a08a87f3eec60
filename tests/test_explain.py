"""`edgeattn explain`: Grad-CAM / attention / rollout heat maps of real tiny models, --compare, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint, open_model, save_checkpoint
from edgeattn.explain import explain_checkpoint
from edgeattn.explain.families import CAM_FAMILIES
from edgeattn.explain.similarity import pearson, top_iou


def assert_varied(heat: np.ndarray, size: int) -> None:
    """Every map has the input's size, spans [0, 1] and is not constant."""
    assert heat.shape[-2:] == (size, size)
    for m in heat:
        assert m.min() >= 0 and m.max() <= 1 + 1e-6
        assert m.std() > 0.05, "heat map is (nearly) constant"


def scrambled(tmp_path, key: str, seed: int = 123):
    """Same architecture, random weights: the negative control of every similarity check (and, for the
    map-shape tests of the transformer families, a model whose maps vary with the input without the
    minutes that training MobileViT or EfficientFormer takes on 2 cores)."""
    torch.manual_seed(seed)
    path = tmp_path / f"{key}-random-{seed}.pt"
    save_checkpoint(ModelHandle.new(tiny_config(key)), path)
    return path


def test_similarity_measures():
    rng = np.random.default_rng(0)
    a = rng.random((16, 16))
    assert pearson(a, a) == pytest.approx(1.0)
    assert pearson(a, -a) == pytest.approx(-1.0)
    assert abs(pearson(a, rng.random((16, 16)))) < 0.3
    assert top_iou(a, a, 20) == 1.0
    left = np.zeros((4, 4))
    left[:, :2] = 1
    assert top_iou(left, 1 - left, 50) == 0.0


def test_mobilevit_fold_inverts_timm_unfold():
    """The token->image reshape of MobileViT's transformer layers is exactly timm's fold."""
    model = open_model("mobilevit_xxs", input_size=64, num_classes=10).module
    path = "stages.3.1.transformer.0"
    ph, pw = model.get_submodule("stages.3.1").patch_size
    b, c, h, w = 2, 5, 4, 4
    x = torch.randn(b, c, h, w)
    nh, nw = h // ph, w // pw  # timm's unfold (MobileVitBlock.forward)
    t = x.reshape(b * c * nh, ph, nw, pw).transpose(1, 2)
    t = t.reshape(b, c, nh * nw, ph * pw).transpose(1, 3).reshape(b * ph * pw, nh * nw, -1)
    folded = CAM_FAMILIES.get("mobilevit").token_grid(model, path)(t)
    assert torch.equal(folded, x)


def test_gradcam_vgg_maps_and_self_comparison(trained, tmp_path):
    ckpt = trained("attn_vgg11_linear")
    report = explain_checkpoint(ckpt, "builtin:digits", tmp_path / "self", images=4, compare=ckpt)
    assert report.layer == "stages.4.convs"
    assert_varied(report.heat, 32)
    assert report.mean_pearson == pytest.approx(1.0, abs=1e-6)
    assert report.mean_iou == pytest.approx(1.0)
    other = explain_checkpoint(
        ckpt, "builtin:digits", tmp_path / "other", images=4, compare=scrambled(tmp_path, "attn_vgg11_linear")
    )
    assert other.mean_pearson < 0.9 and other.mean_iou < 0.9
    assert (tmp_path / "self" / "index.md").read_text().count(".png)") == 4


@pytest.mark.parametrize("method", ["gradcam", "attention", "rollout"])
def test_mobilevit_methods(tmp_path, method):
    report = explain_checkpoint(
        scrambled(tmp_path, "mobilevit_xxs", 0),
        "builtin:digits",
        tmp_path / "x",
        images=2,
        method=method,
        heads=True,
    )
    assert_varied(report.heat, 64)
    assert "transformer" in report.layer  # the last attention block, tokens folded back onto the image
    assert len(list((tmp_path / "x").glob("*.png"))) == 2


def test_efficientformer_tokens_and_heads(tmp_path):
    ckpt = scrambled(tmp_path, "efficientformer_l1", 0)
    cam = explain_checkpoint(ckpt, "builtin:digits", tmp_path / "cam", images=2)
    assert cam.layer == "stages.3.blocks.4"
    assert_varied(cam.heat, 64)
    att = explain_checkpoint(
        ckpt, "builtin:digits", tmp_path / "att", images=2, method="attention", heads=True
    )
    assert att.layer == "stages.3.blocks.4.token_mixer"
    assert_varied(att.heat, 64)


def test_cli_explain_and_compare(trained, run_cli, tmp_path):
    ckpt = trained("attn_vgg11_linear")
    out = tmp_path / "maps"
    code, stdout, _ = run_cli("explain", ckpt, "--data", "builtin:digits", "--images", "3", "--out", out)
    assert code == 0, stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "000.png",
        "001.png",
        "002.png",
        "explain.json",
        "index.md",
    ]
    assert "true" in (out / "index.md").read_text()
    code, stdout, _ = run_cli(
        "explain", ckpt, "--compare", ckpt, "--data", "builtin:digits", "--images", "2",
        "--method", "gradcam++", "--out", tmp_path / "cmp", "--json", tmp_path / "cmp.json",
    )  # fmt: skip
    assert code == 0, stdout
    assert "mean" in stdout and "1.000" in stdout
    assert "mean Pearson r = 1.000" in (tmp_path / "cmp" / "index.md").read_text()


def test_cli_explain_image_files(trained, run_cli, tmp_path):
    from PIL import Image

    from edgeattn.data import load_split

    images = load_split("builtin:digits", "val", size=48).images[:2]
    files = []
    for i, im in enumerate(images):
        files += ["--image", tmp_path / f"digit{i}.png"]
        Image.fromarray(im.permute(1, 2, 0).numpy()).save(files[-1])
    code, stdout, _ = run_cli("explain", trained("attn_vgg11_linear"), *files, "--out", tmp_path / "o")
    assert code == 0, stdout
    assert "digit1.png" in (tmp_path / "o" / "index.md").read_text()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--layer", "stages.4.conv"], ["no layer 'stages.4.conv'", "did you mean", "stages.4.convs"]),
        (["--method", "gradcm"], ["unknown explain method 'gradcm'", "did you mean 'gradcam'"]),
        (["--method", "attention"], ["forms attention maps", "--method gradcam"]),
        (["--layer", "classifier"], ["not a spatial map"]),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(trained, run_cli, tmp_path, args, words):
    out = tmp_path / "never"
    code, stdout, stderr = run_cli(
        "explain",
        trained("attn_vgg11_linear"),
        "--data",
        "builtin:digits",
        "--images",
        "1",
        *args,
        "--out",
        out,
    )
    text = " ".join((stdout + stderr).split())
    assert code == 2, text
    assert "Traceback" not in text and len((stdout + stderr).strip().splitlines()) <= 3
    for w in words:
        assert w in text
    assert not out.exists()


def test_cli_needs_images(trained, run_cli, tmp_path):
    code, stdout, stderr = run_cli("explain", trained("attn_vgg11_linear"), "--out", tmp_path / "o")
    assert code == 2 and "--data" in stdout + stderr


@pytest.mark.slow
def test_pruned_checkpoint_heads_numbered_as_before(trained, tmp_path):
    from edgeattn.prune import prune_checkpoint

    pruned = tmp_path / "pruned.pt"
    prune_checkpoint(
        trained("mobilevit_xxs"), "builtin:digits", pruned, importance="l1", ratio=0.5, val_size=32
    )
    report = explain_checkpoint(
        trained("mobilevit_xxs"), "builtin:digits", tmp_path / "cmp", images=2, compare=pruned
    )
    assert_varied(report.heat_b, 64)
    assert -1 <= report.mean_pearson <= 1 and not math.isnan(report.mean_pearson)
    heads = explain_checkpoint(
        pruned, "builtin:digits", tmp_path / "h", images=1, method="attention", heads=True
    )
    kept = (load_checkpoint(pruned).config.heads_kept or {}).get(heads.layer, [0, 1, 2, 3])
    assert heads.heads == kept  # the heads left, by their unpruned numbers


@pytest.mark.slow
def test_int8_checkpoint_is_explainable(trained, tmp_path):
    from edgeattn.quantize import quantize_checkpoint

    ckpt = trained("attn_vgg11_linear")
    q = tmp_path / "int8.pt"
    quantize_checkpoint(ckpt, "builtin:digits", q, calib_size=64)
    report = explain_checkpoint(ckpt, "builtin:digits", tmp_path / "cmp", images=4, compare=q)
    assert_varied(report.heat_b, 32)
    assert report.mean_pearson > 0.5  # fake-quant barely moves the maps; a random model would not pass


def test_validate_explain_shows_flipped_images(trained, run_cli, tmp_path):
    """A failing drift gate (a random model against the trained one) shows its flipped images."""
    ref = trained("attn_vgg11_linear")
    md = tmp_path / "drift.md"
    code, stdout, stderr = run_cli(
        "validate", scrambled(tmp_path, "attn_vgg11_linear"), "--reference", ref, "--data", "builtin:digits",
        "--limit", "40", "--markdown", md, "--explain", "3",
    )  # fmt: skip
    assert code == 1, stdout + stderr
    text = md.read_text()
    assert "Where they disagree most" in text and text.count("drift_explain/") == 3
    rows = [line for line in text.splitlines() if "drift_explain/" in line]
    assert all("| yes |" in r for r in rows)  # flipped first: a random model flips most images
    assert sorted(p.name for p in (tmp_path / "drift_explain").iterdir()) == ["000.png", "001.png", "002.png"]


def test_validate_explain_needs_markdown(trained, run_cli, tmp_path):
    ckpt = trained("attn_vgg11_linear")
    code, stdout, stderr = run_cli("validate", ckpt, "--reference", ckpt, "--explain", "2")
    assert code == 2 and "--markdown" in stdout + stderr


def test_artifact_without_manifest_says_why_no_source(tmp_path):
    from edgeattn.explain.drift import source_checkpoint

    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"not really")
    path, why = source_checkpoint(onnx)
    assert path is None and "manifest" in why
