"""Folders and file lists stream from disk: timm's eval transform per image, any image mode, odd
names, file lists, a fixed class map, calibration from unlabeled images, and every bad input as one
line with exit 2 through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers.photos import write_photo_folder
from PIL import Image

from edgeattn.data import DataConfig, load_split, load_unlabeled, preprocess
from edgeattn.data.files import decode_rgb
from edgeattn.data.imageset import normalize, resize_uint8
from edgeattn.errors import InputError
from edgeattn.models.config import InputSpec

SPECS = [
    InputSpec(size=(64, 64), interpolation="bilinear", crop_pct=0.875),
    InputSpec(
        size=(56, 40), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5), interpolation="bicubic", crop_pct=1.0
    ),
]


def timm_reference(path, spec: InputSpec) -> torch.Tensor:
    """What a timm eval script feeds the model: PIL RGB -> create_transform(resolve_data_config)."""
    from timm.data import create_transform, resolve_data_config

    cfg = resolve_data_config(
        {
            "input_size": (3, *spec.size),
            "interpolation": spec.interpolation,
            "mean": spec.mean,
            "std": spec.std,
            "crop_pct": spec.crop_pct,
        }
    )
    with Image.open(path) as im:
        return create_transform(**cfg, is_training=False)(im.convert("RGB"))


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("photos")
    write_photo_folder(root / "train", per_class=6)
    write_photo_folder(root / "val", per_class=5)
    return root


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    """An untrained 2-class attn_vgg11 at 32 px: the data path, not accuracy, is under test."""
    from helpers.models import tiny_config

    from edgeattn.checkpoint import ModelHandle, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear", num_classes=2)), path)


@pytest.mark.parametrize("spec", SPECS, ids=["bilinear-crop0.875", "bicubic-56x40"])
def test_model_input_equals_timm_eval_transform_per_photo(photos, spec):
    val = load_split(str(photos), "val", options=DataConfig(workers=2))
    sizes = {Image.open(p).size for p, _ in val.entries}
    assert any(w > h for w, h in sizes) and any(h > w for w, h in sizes)  # landscape and portrait
    ours = preprocess(val.pixels(spec), spec)
    assert ours.shape == (len(val), 3, *spec.size)
    for i, (path, _) in enumerate(val.entries):
        assert torch.allclose(ours[i], timm_reference(path, spec), atol=1e-6), path
    # Negative control: squashing every photo to one size first (the old in-memory loader) is not timm.
    first = torch.from_numpy(np.array(Image.open(val.entries[0][0]).convert("RGB"))).permute(2, 0, 1)
    other = Image.open(val.entries[1][0]).convert("RGB").resize((first.shape[2], first.shape[1]))
    squashed = torch.from_numpy(np.array(other)).permute(2, 0, 1)[None]
    old = normalize(resize_uint8(squashed, spec) / 255.0, spec)[0]
    assert (old - timm_reference(val.entries[1][0], spec)).abs().max() > 0.1


def test_runner_prepares_streamed_pixels_like_timm(photos, tiny_ckpt):
    from edgeattn.runtime import open_runner

    runner = open_runner(tiny_ckpt)
    val = load_split(str(photos), "val", options=DataConfig(workers=0)).subset(3)
    x = runner.prepare(val.pixels(runner.input_spec))
    for i, (path, _) in enumerate(val.entries):
        np.testing.assert_allclose(x[i], timm_reference(path, runner.input_spec).numpy(), atol=1e-6)


def _odd_images(root):
    """One image per PIL mode edgeattn must read, with awkward file names."""
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rgb = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("L").save(root / "grey image.png")
    Image.fromarray(rgb).convert("P").save(root / "palette ü.gif")
    Image.fromarray(np.dstack([rgb, np.full((30, 40), 128, np.uint8)])).save(root / "alpha,comma.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk 印刷.jpg")
    Image.fromarray((np.linspace(0, 65535, 30 * 40).reshape(30, 40)).astype(np.uint16)).save(
        root / "deep16.png"
    )
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90° clockwise to display
    Image.fromarray(rgb).save(root / "rotated.jpg", exif=exif)
    return root


def test_every_mode_and_odd_names_decode_upright_rgb(tmp_path):
    folder = _odd_images(tmp_path / "c")
    decoded = {p.name: decode_rgb(str(p)) for p in folder.iterdir()}
    assert all(im.mode == "RGB" for im in decoded.values())
    assert decoded["rotated.jpg"].size == (30, 40)  # EXIF orientation applied: portrait
    assert {im.size for n, im in decoded.items() if n != "rotated.jpg"} == {(40, 30)}
    deep = np.asarray(decoded["deep16.png"])[..., 0]
    assert deep.min() == 0 and deep.max() == 255 and len(np.unique(deep)) > 100  # scaled, not clipped
    assert (np.asarray(Image.open(folder / "deep16.png").convert("RGB")) == 255).mean() > 0.9  # control
    data = load_split(f"{tmp_path}@all", "val", options=DataConfig(workers=0))
    assert len(data) == 6 and data.pixels(SPECS[0]).shape == (6, 3, 64, 64)


def test_file_lists_classes_and_imagenet_map(photos, tmp_path):
    lst = tmp_path / "lists" / "val.csv"
    lst.parent.mkdir()
    entries = load_split(f"{photos}", "val").entries
    rel = [f"{p},{'flower' if lb else 'china'}" for p, lb in entries]  # absolute paths work too
    lst.write_text("\n".join(["path,label", *rel]) + "\n")
    data = load_split(f"{lst}@all", "val")
    assert data.classes == ["china", "flower"] and data.labels.tolist() == [lb for _, lb in entries]
    # text list, index labels, paths relative to the list (with a space)
    (tmp_path / "my imgs").mkdir()
    for i, (p, _) in enumerate(entries[:4]):
        (tmp_path / "my imgs" / f"{i}.jpg").write_bytes(open(p, "rb").read())
    txt = tmp_path / "list.txt"
    txt.write_text("".join(f"my imgs/{i}.jpg,{i % 2}\n" for i in range(4)))
    assert load_split(f"{txt}@all", "val").labels.tolist() == [0, 1, 0, 1]
    # a class file fixes the label order; imagenet-1k is timm's synset order
    names = tmp_path / "classes.txt"
    names.write_text("flower\nchina\n")
    flipped = load_split(str(photos), "val", options=DataConfig(classes=names))
    assert flipped.labels.tolist() == [1 - lb for _, lb in entries]
    inet = tmp_path / "inet"
    for syn in ("n01440764", "n15075141"):
        (inet / syn).mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(inet / syn / "a.jpg")
    got = load_split(f"{inet}@all", "val", options=DataConfig(classes="imagenet-1k"))
    assert got.num_classes == 1000 and got.labels.tolist() == [0, 999]


def _bad(tmp_path, case):
    """A data spec that is wrong in one way, and the words its error must say."""
    root = tmp_path / case
    if case == "empty":
        root.mkdir()
        return str(root), ["is empty"]
    if case == "no-class-folders":
        root.mkdir()
        Image.new("RGB", (8, 8)).save(root / "a.jpg")
        return str(root), ["no class folders", "--calib"]
    if case == "missing-listed":
        root.mkdir()
        (root / "l.csv").write_text("gone.jpg,0\n")
        return str(root / "l.csv"), ["gone.jpg", "does not exist"]
    if case == "unknown-val-class":
        write_photo_folder(root / "train", per_class=1)
        write_photo_folder(root / "val", classes=("china", "zebra"), per_class=1)
        return str(root), ["'zebra'", "does not have"]
    raise AssertionError(case)


@pytest.mark.parametrize("case", ["empty", "no-class-folders", "missing-listed", "unknown-val-class"])
def test_bad_data_is_one_line_exit_2(tiny_ckpt, run_cli, tmp_path, case):
    spec, words = _bad(tmp_path, case)
    code, stdout, stderr = run_cli("eval", tiny_ckpt, "--data", spec)
    assert code == 2, stdout + stderr
    assert len(stderr.strip().splitlines()) == 1 and all(w in stderr for w in words), stderr


def test_corrupt_image_is_named_or_skipped(photos, tiny_ckpt, run_cli, tmp_path):
    import shutil

    root = tmp_path / "d"
    shutil.copytree(photos, root)
    good = (root / "val" / "china" / "0.jpg").read_bytes()
    (root / "val" / "china" / "cut off.jpg").write_bytes(good[: len(good) // 3])  # truncated JPEG
    code, _, stderr = run_cli("eval", tiny_ckpt, "--data", root, "--workers", "2")
    assert code == 2 and "cut off.jpg" in stderr and "--skip-bad-images" in stderr, stderr
    assert len(stderr.strip().splitlines()) == 1
    out = tmp_path / "e.json"
    code, stdout, _ = run_cli("eval", tiny_ckpt, "--data", root, "--skip-bad-images", "--json", out)
    report = json.loads(out.read_text())
    assert code == 0 and report["skipped"] == 1 and report["n"] == 10, stdout
    assert report["load_images_per_s"] > 0 and report["model_images_per_s"] > 0


@pytest.mark.parametrize("command", ["compare", "prune", "explain"])
def test_commands_reading_labeled_data_take_the_data_flags(photos, tiny_ckpt, run_cli, tmp_path, command):
    """compare, prune and explain read val like eval does: a bad file stops them naming it, and
    --skip-bad-images --workers --classes reach the data layer."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(photos, root)
    (root / "val" / "flower" / "bad.png").write_bytes(b"\x89PNG not really")
    (tmp_path / "classes.txt").write_text("china\nflower\n")
    args = {
        "compare": ["compare", tiny_ckpt, "--reference", tiny_ckpt, "--data", root],
        "prune": ["prune", tiny_ckpt, "--data", root, "--ratio", "0.25", "--importance", "l1"],
        "explain": ["explain", tiny_ckpt, "--data", root, "--images", "16"],
    }[command]
    args += {"compare": [], "prune": ["--out", tmp_path / "p.pt"], "explain": ["--out", tmp_path / "x"]}[
        command
    ]
    code, stdout, stderr = run_cli(*args, "--workers", "1")
    assert code == 2 and "bad.png" in stderr and len(stderr.strip().splitlines()) == 1, stdout + stderr
    flags = ["--workers", "1", "--classes", tmp_path / "classes.txt", "--skip-bad-images"]
    code, stdout, stderr = run_cli(*args, *flags)
    assert code == 0, stdout + stderr
    # --classes reaches the class map: one that lacks a class of the folder is refused.
    (tmp_path / "one.txt").write_text("china\n")
    code, _, stderr = run_cli(*args, "--classes", tmp_path / "one.txt", "--skip-bad-images")
    assert code == 2 and "'flower'" in stderr, stderr


@pytest.mark.slow  # the README's data section runs `quantize --calib DIR` in the default suite
def test_quantize_calibrates_on_unlabeled_folder(photos, tiny_ckpt, run_cli, tmp_path):
    unlabeled = tmp_path / "unlabeled photos"
    unlabeled.mkdir()
    for i, p in enumerate(sorted((photos / "train").rglob("*.jpg"))[:7]):
        (unlabeled / f"{i}.jpg").write_bytes(p.read_bytes())
    assert len(load_unlabeled(unlabeled)) == 7
    out, js = tmp_path / "q.pt", tmp_path / "q.json"
    args = ("quantize", tiny_ckpt, "--data", photos, "--calib", unlabeled, "--out", out, "--json", js)
    code, stdout, stderr = run_cli(*args)
    assert code == 0, stdout + stderr
    assert json.loads(js.read_text())["calibration_images"] == 7 and out.exists()
    code, _, stderr = run_cli(
        "quantize", tiny_ckpt, "--data", photos, "--calib", tmp_path / "none", "--out", out
    )
    assert code == 2 and "does not exist" in stderr


def test_bad_list_and_class_file_lines(tmp_path):
    lst = tmp_path / "l.csv"
    lst.write_text("only-a-path.jpg\n")
    with pytest.raises(InputError, match="is not `path,label`"):
        load_split(str(lst), "val")
    names = tmp_path / "c.txt"
    names.write_text("a\na\n")
    with pytest.raises(InputError, match="twice"):
        load_split(str(lst), "val", options=DataConfig(classes=names))


@pytest.mark.parametrize(
    "spec", [*SPECS[:1], InputSpec(size=(33, 33), interpolation="bicubic", crop_pct=0.9)]
)
def test_in_memory_resize_has_timms_geometry(spec):
    """Arrays (.npz, the runners' and device agent's raw-image path) resize with torch's kernel but
    timm's geometry: within a fraction of a grey level of timm's PIL pixels, far from a 1-pixel shift."""
    from helpers.photos import crops

    from edgeattn.data.stream import geometric_transform

    for img in crops(5):
        ours = resize_uint8(torch.from_numpy(img.copy()).permute(2, 0, 1)[None], spec)[0]
        ref = np.array(geometric_transform(spec)(Image.fromarray(img)), dtype=np.float32)
        ref = torch.from_numpy(ref).permute(2, 0, 1)
        diff = float((ours - ref).abs().mean())
        assert diff < 0.5 and float((torch.roll(ref, 1, dims=2) - ref).abs().mean()) > 2 * diff, diff


def test_training_from_files_names_a_bad_file_or_skips_it_reproducibly(photos, run_cli, tmp_path):
    """Training decodes in 2 loader workers: an undecodable file is one line naming it (exit 2, nothing
    written); with --skip-bad-images the same seed still gives the same checkpoint bytes."""
    import shutil

    root = tmp_path / "d"
    shutil.copytree(photos, root)
    (root / "train" / "flower" / "bad.png").write_bytes(b"\x89PNG not really")
    args = ["train", "--model", "attn_vgg11", "--option", "width=0.25", "--input-size", "32", "--data", root]
    args += ["--epochs", "1", "--batch-size", "4", "--workers", "2"]
    code, _, stderr = run_cli(*args, "--out", tmp_path / "m.pt")
    assert code == 2 and "bad.png" in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert not (tmp_path / "m.pt").exists()
    for name in ("a.pt", "b.pt"):
        code, stdout, stderr = run_cli(*args, "--skip-bad-images", "--out", tmp_path / name)
        assert code == 0, stdout + stderr
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
