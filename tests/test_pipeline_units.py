"""Fast checks of the pipeline's parts: cache keys, fingerprints, stage order, placements, JUnit."""

from __future__ import annotations

from pathlib import Path

import yaml

from edgeattn.validate.gates import Gates


def _recipe(tmp_path: Path, data: dict):
    from edgeattn.pipeline import load_recipe

    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


def test_stages_run_in_pipeline_order():
    from edgeattn.pipeline.stages import ordered_stages

    assert [s.name for s in ordered_stages()] == ["train", "prune", "quantize", "export", "validate", "bench"]


def test_step_key_depends_on_config_and_input_content_only():
    from edgeattn.pipeline.cache import step_key

    base = step_key("prune/pruned", {"ratio": 0.25}, {"checkpoint": "aa"})
    assert base == step_key("prune/pruned", {"ratio": 0.25}, {"checkpoint": "aa"})
    assert base != step_key("prune/pruned", {"ratio": 0.5}, {"checkpoint": "aa"})
    assert base != step_key("prune/pruned", {"ratio": 0.25}, {"checkpoint": "bb"})
    assert base != step_key("export/x", {"ratio": 0.25}, {"checkpoint": "aa"})


def test_cache_record_is_invalid_when_an_output_changes(tmp_path):
    from edgeattn.fileio import sha256_of
    from edgeattn.pipeline.cache import CacheRecord, HashCache, still_valid

    out = tmp_path / "stage" / "a.bin"
    out.parent.mkdir()
    out.write_bytes(b"one")
    record = CacheRecord(key="k", status="done", outputs={"stage/a.bin": sha256_of(out)})
    record.write(tmp_path / "stage" / ".a.step.json")
    loaded = CacheRecord.read(tmp_path / "stage" / ".a.step.json")
    assert still_valid(loaded, "k", tmp_path, HashCache())
    assert not still_valid(loaded, "other", tmp_path, HashCache())
    out.write_bytes(b"two")
    assert not still_valid(loaded, "k", tmp_path, HashCache())
    out.unlink()
    assert not still_valid(loaded, "k", tmp_path, HashCache())
    assert CacheRecord.read(tmp_path / "missing.json") is None


def test_skips_are_reused_only_on_the_same_environment(tmp_path):
    from edgeattn.pipeline.cache import CacheRecord, HashCache, environment_fingerprint, still_valid

    record = CacheRecord(key="k", status="skipped", reason="no GPU", environment=environment_fingerprint())
    assert still_valid(record, "k", tmp_path, HashCache())
    record.environment = {**record.environment, "tensorrt": "10.0"}  # TensorRT installed since
    assert not still_valid(record, "k", tmp_path, HashCache())


def test_data_fingerprints_follow_content_not_location(tmp_path):
    import numpy as np

    from edgeattn.pipeline.cache import HashCache, data_fingerprint

    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez(a, images=np.zeros((2, 3, 8, 8), np.uint8), labels=np.array([0, 1]))
    b.write_bytes(a.read_bytes())
    h = HashCache()
    assert data_fingerprint(str(a), h) == data_fingerprint(str(b), h)
    assert data_fingerprint(str(a), h) != data_fingerprint(str(a) + "@all", h)
    folder = tmp_path / "imgs" / "cat"
    folder.mkdir(parents=True)
    (folder / "1.png").write_bytes(b"x")
    before = data_fingerprint(str(tmp_path / "imgs"), h)
    (folder / "2.png").write_bytes(b"y")
    assert data_fingerprint(str(tmp_path / "imgs"), h) != before
    assert data_fingerprint("builtin:digits", h).startswith("builtin:digits:")


def test_int8_exports_are_quantized_for_their_runtime(tmp_path):
    from edgeattn.pipeline.stages.quantize import checkpoint_name, placements

    def recipe(targets):
        data = {
            "model": {"name": "attn_vgg11", "input_size": 32},
            "train": {},
            "quantize": {"ptq": {}},
            "export": {"targets": targets},
        }
        return _recipe(tmp_path, data).recipe

    assert placements(recipe([{"target": "onnx", "precisions": ["fp32", "int8"]}])) == ["onnxruntime"]
    assert placements(
        recipe([{"target": "onnx", "precisions": ["int8"]}, {"target": "tensorrt", "precisions": ["int8"]}])
    ) == [
        "onnxruntime",
        "tensorrt",
    ]
    assert placements(recipe([{"target": "tensorrt", "precisions": ["fp16"]}])) == ["onnxruntime"]
    assert placements(
        recipe([{"target": "onnx", "precisions": ["int8"], "options": {"runtime": "tensorrt"}}])
    ) == ["tensorrt"]
    assert (
        checkpoint_name("ptq", "onnxruntime") == "ptq"
        and checkpoint_name("qat", "tensorrt") == "qat-tensorrt"
    )


def test_precision_gates_override_key_by_key(tmp_path):
    loaded = _recipe(
        tmp_path,
        {
            "model": {"name": "attn_vgg11", "input_size": 32},
            "train": {},
            "validate": {
                "gates": {"max_top1_drop": 0.5, "max_kl": None},
                "precision_gates": {"int8": {"max_top1_drop": 2.0}},
            },
        },
    )
    v = loaded.recipe.validate_cfg
    assert v.gates_for("fp32")["max_top1_drop"] == 0.5
    int8 = v.gates_for("int8")
    assert (
        int8["max_top1_drop"] == 2.0
        and int8["max_kl"] is None
        and int8["min_agreement"] == Gates().min_agreement
    )
