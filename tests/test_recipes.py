"""Recipes: every shipped recipe checks; `recipe new` writes recipes that check; bad recipes are refused
before any work, with the key's path (exit 2, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from helpers.models import REPO

RECIPES = sorted((REPO / "recipes").glob("*.yaml"))
FAMILIES = {"mobilevit": "mobilevit_xxs", "efficientformer": "efficientformer_l1", "attn_vgg": "attn_vgg11"}
TARGETS = ("onnx", "tensorrt", "coreml")


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_shipped_recipe_checks(path):
    from edgeattn.pipeline import check_recipe

    loaded, problems = check_recipe(path)
    assert problems == [], [str(p) for p in problems]
    assert loaded.name == path.stem  # output folder exported/<file stem>: one recipe, one folder


def test_recipe_check_cli_accepts_all_shipped_recipes(run_cli):
    code, out, err = run_cli("recipe", "check", *RECIPES)
    assert code == 0, out + err
    assert out.count("✓") == len(RECIPES)


def test_recipes_cover_every_family_and_target_family():
    from edgeattn.models import model_spec
    from edgeattn.pipeline import load_recipe

    covered = set()
    for path in RECIPES:
        r = load_recipe(path).recipe
        if r.model.name is None:
            continue
        family = model_spec(r.model.name).family
        covered |= {(family, t.target) for t in r.export.targets}
    assert {(f, t) for f in ("mobilevit", "efficientformer", "attn_vgg") for t in TARGETS} <= covered
    assert (REPO / "recipes" / "demo_quick.yaml").exists()


def test_demo_recipe_does_the_whole_job():
    """The demo trains, prunes, runs PTQ and QAT, exports ONNX fp32/int8 and Core ML, tries TensorRT."""
    from edgeattn.pipeline import load_recipe

    r = load_recipe(REPO / "recipes" / "demo_quick.yaml").recipe
    assert r.data.train == "builtin:digits" and r.train is not None and r.model.checkpoint is None
    assert r.prune_enabled and set(r.quantize.methods) == {"ptq", "qat"}
    exports = {(t.target, p) for t in r.export.targets for p in t.precisions}
    assert {("onnx", "fp32"), ("onnx", "int8"), ("tensorrt", "int8")} <= exports
    assert any(t == "coreml" for t, _ in exports)
    assert r.validate_cfg.enabled and r.bench.enabled


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("target", TARGETS)
def test_recipe_new_writes_a_recipe_that_checks(run_cli, tmp_path, family, target):
    out = tmp_path / f"{family}_{target}.yaml"
    code, stdout, err = run_cli(
        "recipe", "new", "--model", FAMILIES[family], "--target", target, "--out", out
    )
    assert code == 0, stdout + err
    text = out.read_text()
    assert text.count("#") > 20  # commented
    data = yaml.safe_load(text)
    assert data["export"]["targets"][0]["target"] == target
    code, stdout, err = run_cli("recipe", "check", out)
    assert code == 0, stdout + err


def test_recipe_new_from_checkpoint_writes_a_relative_path_that_checks(run_cli, tmp_path, trained):
    ckpt = trained("attn_vgg11_linear")
    out = tmp_path / "sub" / "mine.yaml"
    out.parent.mkdir()
    code, stdout, err = run_cli(
        "recipe",
        "new",
        "--model",
        "attn_vgg11",
        "--target",
        "onnx",
        "--target",
        "coreml",
        "--checkpoint",
        ckpt,
        "--out",
        out,
    )
    assert code == 0, stdout + err
    data = yaml.safe_load(out.read_text())
    assert "train" not in data and not Path(data["model"]["checkpoint"]).is_absolute()
    code, stdout, err = run_cli("recipe", "check", out)
    assert code == 0, stdout + err


def test_recipe_new_refuses_bad_input_and_keeps_existing_files(run_cli, tmp_path):
    out = tmp_path / "r.yaml"
    out.write_text("keep me")
    code, _, err = run_cli("recipe", "new", "--model", "mobilevit_xxs", "--target", "onnx", "--out", out)
    assert code == 2 and "already exists" in err and out.read_text() == "keep me"
    code, _, err = run_cli("recipe", "new", "--model", "mobilevit_xxs", "--target", "tflite")
    assert code == 2 and "unknown target 'tflite'" in err
    code, _, err = run_cli("recipe", "new", "--model", "mobilevit_xxx", "--target", "onnx")
    assert code == 2 and "did you mean 'mobilevit_xxs'" in err


# ------------------------------------------------------------------------------------ bad recipes
GOOD = {
    "model": {"name": "attn_vgg11", "input_size": 32, "options": {"width": 0.25}},
    "train": {"epochs": 1},
    "export": {"targets": [{"target": "onnx", "precisions": ["fp32"]}]},
}


def _with(**changes):
    import copy

    data = copy.deepcopy(GOOD)
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split("__")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return data


BAD = {
    "unknown_key": (_with(prune={"ratoi": 0.2}), ["prune.ratoi", "did you mean 'ratio'"]),
    "unknown_section": (_with(quantise={"ptq": {}}), ["quantise", "did you mean 'quantize'"]),
    "wrong_type": (_with(train={"epochs": "many"}), ["train.epochs", "valid integer"]),
    "target_precision": (
        _with(export={"targets": [{"target": "onnx", "precisions": ["fp32", "int8-weights"]}]}),
        ["export.targets[0].precisions[1]", "onnx cannot be exported as 'int8-weights'"],
    ),
    "unknown_target": (
        _with(export={"targets": [{"target": "tensorrtt"}]}),
        ["export.targets[0].target", "did you mean 'tensorrt'"],
    ),
    "int8_without_quantize": (
        _with(export={"targets": [{"target": "onnx", "precisions": ["int8"]}]}),
        ["export.targets[0].precisions[0]", "needs a quantize section"],
    ),
    "gate_out_of_range": (
        _with(validate={"gates": {"min_agreement": 150}}),
        ["validate.gates.min_agreement", "less than or equal to 100"],
    ),
    "unknown_gate": (
        _with(validate={"gates": {"max_top5_drop": 1}}),
        ["validate.gates.max_top5_drop", "unknown key"],
    ),
    "missing_checkpoint": (
        {**GOOD, "train": None, "model": {"checkpoint": "nowhere/model.pt"}},
        ["model.checkpoint", "does not exist"],
    ),
    "no_model": ({"train": {}}, ["model", "missing"]),
    "unknown_model": (_with(model__name="mobilevit_xxxs"), ["model.name", "did you mean 'mobilevit_xxs'"]),
    "input_size": (_with(model__input_size=30), ["model.input_size", "multiple of 32"]),
    "prune_amount": (
        _with(prune={"ratio": 0.2, "heads": 2}),
        ["prune", "exactly one of ratio, heads, target_macs"],
    ),
    "prune_ratio_range": (_with(prune={"ratio": 1.5}), ["prune.ratio", "less than 1"]),
    "importance": (
        _with(prune={"ratio": 0.2, "importance": "taylr"}),
        ["prune.importance", "did you mean 'taylor'"],
    ),
    "no_train_no_checkpoint": ({**GOOD, "train": None}, ["train", "give a train section"]),
    "target_option": (
        _with(export={"targets": [{"target": "coreml", "options": {"inputt": "image"}}]}),
        ["export.targets[0].options.inputt", "did you mean 'input'"],
    ),
    "runtime": (_with(bench={"runtimes": ["onnxrt"]}), ["bench.runtimes[0]", "unknown runtime"]),
    "dynamic_batch": (
        _with(export={"dynamic_batch": [8, 1, 32]}),
        ["export.dynamic_batch", "min <= opt <= max"],
    ),
    "asymmetric_int8_for_tensorrt": (
        _with(
            quantize={"ptq": {"preset": "mixed"}},
            export={"targets": [{"target": "tensorrt", "precisions": ["int8"]}]},
        ),
        ["quantize.ptq.preset", "--preset mixed cannot be used with --runtime tensorrt"],
    ),
    "measured_placement_for_tensorrt": (
        _with(
            quantize={"ptq": {"placement": "measured"}},
            export={"targets": [{"target": "tensorrt", "precisions": ["int8"]}]},
        ),
        ["quantize.ptq.placement", "measured placement times the model on onnxruntime, not tensorrt"],
    ),
}


def _write(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in data.items() if v is not None}, sort_keys=False))
    return path


@pytest.mark.parametrize("case", BAD)
def test_bad_recipe_is_refused_before_any_work(run_cli, tmp_path, case):
    data, expected = BAD[case]
    path = _write(tmp_path, data)
    out_root = tmp_path / "exported"
    code, out, err = run_cli("run", path, "--out-root", out_root)
    assert code == 2, out + err
    for text in expected:
        assert text in err, err
    assert len(err.strip().splitlines()) == 1  # one line, no traceback
    assert not out_root.exists()  # nothing started, nothing written
    code, out, _ = run_cli("recipe", "check", path)
    assert code == 2 and expected[0] in out


def test_problems_carry_line_numbers_and_all_are_listed(tmp_path):
    from edgeattn.pipeline import check_recipe

    path = tmp_path / "r.yaml"
    path.write_text("model:\n  name: attn_vgg11\ntrain:\n  epochs: 0\nbench:\n  threads: lots\n")
    _, problems = check_recipe(path)
    assert [(p.path, p.line) for p in problems] == [("train.epochs", 4), ("bench.threads", 6)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("model: [unclosed\n", "not valid YAML (line"),
        ("model: {name: attn_vgg11}\nmodel: {name: mobilevit_xxs}\ntrain: {}\n", "key 'model' appears twice"),
        ("", "is empty"),
        ("- just\n- a list\n", "must be a mapping"),
    ],
)
def test_unreadable_recipes_are_refused(run_cli, tmp_path, text, expected):
    path = tmp_path / "r.yaml"
    path.write_text(text)
    code, _, err = run_cli("run", path, "--out-root", tmp_path / "exported")
    assert code == 2 and expected in err, err
    assert not (tmp_path / "exported").exists()


def test_paths_are_relative_to_the_recipe_file(tmp_path, trained, monkeypatch):
    import shutil

    from edgeattn.pipeline import load_recipe

    (tmp_path / "models").mkdir()
    shutil.copy(trained("attn_vgg11_linear"), tmp_path / "models" / "tiny.pt")
    (tmp_path / "recipes").mkdir()
    path = tmp_path / "recipes" / "r.yaml"
    path.write_text("model: {checkpoint: ../models/tiny.pt}\n")
    monkeypatch.chdir(REPO)  # anywhere but the recipe's folder
    loaded = load_recipe(path)
    assert (
        loaded.path(loaded.recipe.model.checkpoint).resolve() == (tmp_path / "models" / "tiny.pt").resolve()
    )
    assert loaded.checkpoint_config["name"] == "attn_vgg11"


def test_defaults_are_filled_in(tmp_path):
    from edgeattn.pipeline import load_recipe

    path = tmp_path / "minimal.yaml"
    path.write_text("model: {name: mobilevit_xxs, input_size: 64}\ntrain: {}\n")
    r = load_recipe(path).recipe.to_dict()
    assert r["export"]["targets"] == [{"target": "onnx", "precisions": ["fp32"], "options": {}}]
    assert r["validate"]["gates"]["max_top1_drop"] == 1.0 and r["bench"]["batches"] == [1]


def test_recipes_readme_documents_every_key_and_default():
    from edgeattn.pipeline.template import reference_markdown

    assert reference_markdown() in (REPO / "recipes" / "README.md").read_text(), (
        "recipes/README.md is out of date: regenerate its 'Every key' part with reference_markdown()"
    )


@pytest.mark.slow
def test_timm_deit_recipe_runs_end_to_end(run_cli, tmp_path):
    """The issue's done-when: the shipped timm DeiT recipe trains, prunes, quantizes, exports ONNX
    fp32/int8, validates within its gates and benchmarks, as `edgeattn run` runs it."""
    import json

    code, out, err = run_cli("run", REPO / "recipes" / "timm_deit_onnx.yaml", "--out-root", tmp_path)
    assert code == 0, out[-3000:] + err
    m = json.loads((tmp_path / "timm_deit_onnx" / "manifest.json").read_text())
    assert m["status"] == "passed"
    assert sum(len(v) for v in m["prune"]["heads_kept"].values()) == 9  # 12 heads, ratio 0.25
    assert {(a["target"], a["precision"]) for a in m["artifacts"]} >= {("onnx", "fp32"), ("onnx", "int8")}
