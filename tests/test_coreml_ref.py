"""Core ML exports of the zoo, run on Linux by the reference executor, against torch.

Packages are made by the real exporter (`export_artifact(..., "coreml")`: torch.export -> coremltools
ML Program) and cached for the session, so every test that needs the same export shares one
conversion (~10 s each on 2 cores). The default run covers each family and each op kind the zoo
produces; the full model x precision matrix is `slow` (`make test-all`).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers.models import TINY, tiny_config

from edgeattn.checkpoint import ModelHandle, load_checkpoint, save_checkpoint
from edgeattn.data import load_split
from edgeattn.errors import InputError, UnavailableError
from edgeattn.manifest import read_manifest
from edgeattn.runtime import open_runner
from edgeattn.runtime.coreml_ref import implemented_ops, load_program, program_op_types

ON_MAC = sys.platform == "darwin"
REFERENCE = "Core ML reference executor (Linux)"
# One config per op kind the zoo produces in the default run; the rest of TINY is in the slow matrix.
DEFAULT_FP32 = (
    "mobilevit_xxs",
    "efficientformer_l1",
    "attn_vgg11_linear",
    "attn_vgg11_cbam",
    "attn_vgg11_eca",
)
# FP16 top-1 needs a trained model: training mobilevit_xxs takes minutes on 2 cores, so its FP16 check
# runs under `make test-all`; its ops are covered in the default run by the FP32 program test above.
DEFAULT_FP16 = ("attn_vgg11_linear",)
EVAL_BATCH = 100  # tensor-input exports for whole-val-set checks run 100 images per program run


def _params(keys_default: tuple[str, ...]) -> list:
    return [pytest.param(k, marks=() if k in keys_default else pytest.mark.slow, id=k) for k in TINY]


def random_checkpoint(key: str, folder: Path) -> Path:
    """A seeded, untrained TINY[key] checkpoint whose BatchNorm statistics and affine terms are random
    (at init they are 0/1, which would leave batch_norm untested), and whose classifier is scaled so
    logits reach ~5 like a trained model's (an untrained head gives ~0.1, where 1e-4 means little)."""
    path = folder / f"{key}-random.pt"
    if not path.exists():
        torch.manual_seed(0)
        cfg = tiny_config(key)
        handle = ModelHandle.new(cfg)
        module = handle.module.eval()
        with torch.no_grad():
            for m in module.modules():
                if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                    m.running_mean.uniform_(-0.5, 0.5)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.3, 0.3)
            scale = 5.0 / float(module(torch.randn(8, 3, cfg.input_size, cfg.input_size)).abs().max())
            for m in module.modules():  # every classifier head (EfficientFormer averages two)
                if isinstance(m, torch.nn.Linear) and m.out_features == cfg.num_classes:
                    m.weight.mul_(scale)
                    m.bias.mul_(scale)
        save_checkpoint(handle, path)
    return path


@pytest.fixture(scope="session")
def coreml_export(tmp_path_factory):
    """`coreml_export(checkpoint, precision, **options)` -> .mlpackage, converted once per session."""
    from edgeattn.export import export_artifact

    root = tmp_path_factory.mktemp("coreml-exports")
    cache: dict[tuple, Path] = {}

    def export(ckpt: Path, precision: str, **options) -> Path:
        key = (str(ckpt), precision, tuple(sorted(options.items())))
        if key not in cache:
            out = root / f"{len(cache):02d}-{Path(ckpt).stem}-{precision}.mlpackage"
            export_artifact(ckpt, "coreml", out, precision=precision, **options)
            cache[key] = out
        return cache[key]

    export.cache = cache  # type: ignore[attr-defined]
    return export


@pytest.fixture(scope="session")
def random_ckpts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("coreml-random-ckpts")
    return lambda key: random_checkpoint(key, folder)


def torch_logits(ckpt: Path, x: np.ndarray) -> np.ndarray:
    module = load_checkpoint(ckpt).module.eval()
    with torch.no_grad():
        return torch.cat([module(torch.from_numpy(x[i : i + 256])) for i in range(0, len(x), 256)]).numpy()


def val_set(size: int, n: int | None = None):
    return load_split("builtin:digits", "val", size).subset(n)


# ------------------------------------------------------------------------ FP32: 1e-4 of torch
@pytest.mark.parametrize("key", _params(DEFAULT_FP32))
def test_fp32_program_matches_torch(key, coreml_export, random_ckpts):
    ckpt = random_ckpts(key)
    pkg = coreml_export(ckpt, "fp32", input="tensor", batch=4)
    runner = open_runner(pkg, executor="reference")
    assert runner.runtime == REFERENCE
    assert runner.info()["compute_dtype"] == "fp32" and runner.max_batch == 4
    x = runner.prepare(val_set(TINY[key]["input_size"], 8).images)
    got = np.concatenate([runner.run(x[:4]), runner.run(x[4:])])
    want = torch_logits(ckpt, x)
    err = float(np.abs(got - want).max())
    scale = float(np.abs(want).max())
    print(f"{key}: FP32 Core ML program vs torch: max |logit error| {err:.2e} (logit scale {scale:.2f})")
    assert scale > 1.0, "tiny logits would make a 1e-4 bound meaningless"
    assert err <= 1e-4


# ------------------------------------------------------------------------ FP16: top-1 vs torch
@pytest.mark.parametrize("key", _params(DEFAULT_FP16))
def test_fp16_program_agrees_with_torch_top1(key, coreml_export, trained):
    ckpt = trained(key)
    pkg = coreml_export(ckpt, "fp16", input="tensor", batch=EVAL_BATCH)
    runner = open_runner(pkg, executor="reference")
    assert runner.info()["compute_dtype"] == "fp16"
    data = val_set(TINY[key]["input_size"])
    got = runner.predict(data.images, batch_size=EVAL_BATCH)
    want = torch_logits(ckpt, runner.prepare(data.images))
    agreement = float((got.argmax(1) == want.argmax(1)).mean())
    err = float(np.abs(got - want).max())
    print(
        f"{key}: FP16 program vs torch on {len(data)} val images: top-1 agreement {100 * agreement:.2f} %, max |logit error| {err:.3g}"
    )
    assert len(data) >= 500
    assert agreement >= 0.99
    assert 0 < err < 0.5  # FP16 rounding shows (the program really ran in fp16), but stays small


# ------------------------------------------------------------------------ INT8 weights: drift vs FP32
def test_int8_weight_export_validates_and_shows_drift(coreml_export, trained, tmp_path):
    from edgeattn.validate import Gates, validate_artifact

    key = "attn_vgg11_linear"
    ckpt = trained(key)
    pkg = coreml_export(ckpt, "int8-weights", input="tensor", batch=EVAL_BATCH, weight_threshold=256)
    ops = program_op_types(pkg)
    assert ops["constexpr_affine_dequantize"] >= 5, ops
    report = validate_artifact(
        pkg,
        ckpt,
        "builtin:digits",
        gates=Gates(max_top1_drop=3.0, min_agreement=95.0, max_kl=0.05),
        json_out=tmp_path / "v.json",
    )
    m = report.metrics
    print(
        f"{key}: INT8-weight Core ML vs FP32 torch on {m.n} val images: top-1 {m.artifact_top1:.2f} % vs {m.reference_top1:.2f} %, "
        f"agreement {m.agreement:.2f} %, KL {m.kl:.2e}, max |logit error| {m.max_abs_logit_error:.3g}"
    )
    saved = json.loads((tmp_path / "v.json").read_text())
    if not ON_MAC:
        assert saved["artifact_info"]["runtime"] == REFERENCE
    assert report.passed, [g.to_dict() for g in report.failed]
    assert m.max_abs_logit_error > 1e-3  # int8 weights drift visibly, more than FP16 rounding alone
    # ... and more than the FP16 program of the same checkpoint does.
    fp16 = open_runner(coreml_export(ckpt, "fp16", input="tensor", batch=EVAL_BATCH), executor="reference")
    data = val_set(TINY[key]["input_size"])
    ref = torch_logits(ckpt, fp16.prepare(data.images))
    fp16_err = float(np.abs(fp16.predict(data.images, batch_size=EVAL_BATCH) - ref).max())
    assert m.max_abs_logit_error > fp16_err


# ------------------------------------------------------------------------ image input (the export default)
def test_image_input_program_matches_torch(coreml_export, random_ckpts):
    """The exporter's default: an ImageType input (0..255 RGB, normalisation folded in), FP16, batch 1."""
    key = "attn_vgg11_se"
    ckpt = random_ckpts(key)
    pkg = coreml_export(ckpt, "fp16")
    program = load_program(pkg)
    assert program.inputs[0].image == "RGB" and program.compute_dtype == "fp16"
    runner = open_runner(pkg, executor="reference")
    assert runner.image_input and runner.max_batch == 1
    images = val_set(TINY[key]["input_size"], 16).images
    got = runner.predict(images)
    handle = load_checkpoint(ckpt)
    from edgeattn.data.imageset import preprocess

    want = torch_logits(ckpt, preprocess(images, handle.input_spec).numpy())
    scale = float(np.abs(want).max())
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9
    assert float(np.abs(got - want).max()) <= 0.02 * max(1.0, scale)


# ------------------------------------------------------------------------ every op is implemented
def test_every_op_of_the_zoo_exports_is_implemented(coreml_export, random_ckpts, trained):
    """Walk the programs of the zoo's exports (every one this session made, and at least one export
    per family/precision kind), list their op types, and require an implementation for each."""
    for key in DEFAULT_FP32:
        coreml_export(random_ckpts(key), "fp32", input="tensor", batch=4)
    coreml_export(random_ckpts("attn_vgg11_se"), "fp16")
    coreml_export(
        trained("attn_vgg11_linear"), "int8-weights", input="tensor", batch=EVAL_BATCH, weight_threshold=256
    )
    implemented = set(implemented_ops())
    table: dict[str, Counter] = {}
    for pkg in coreml_export.cache.values():
        table[pkg.name] = program_op_types(pkg)
    used = Counter()
    for ops in table.values():
        used.update(ops)
    print(f"op types in {len(table)} zoo exports:")
    for op, n in sorted(used.items()):
        print(f"  {op:32s} {n:5d}  {'ok' if op in implemented else 'MISSING'}")
    missing = sorted(set(used) - implemented)
    assert not missing, f"ops the reference executor lacks: {missing}"
    assert {"conv", "linear", "matmul", "softmax", "layer_norm", "constexpr_affine_dequantize"} <= set(used)
    for pkg in table:  # and each program loads (constants decoded, every op resolved)
        load_program(next(p for p in coreml_export.cache.values() if p.name == pkg))


# ------------------------------------------------------------------------ the runner and the CLI
def test_runner_says_which_core_ml_ran_and_leaves_the_package_untouched(coreml_export, random_ckpts):
    pkg = coreml_export(random_ckpts("attn_vgg11_eca"), "fp32", input="tensor", batch=4)
    before = read_manifest(pkg).sha256
    runner = open_runner(pkg)  # the artifact's default runner
    assert runner.kind == "coreml"
    info = runner.info()
    if not ON_MAC:
        assert runner.runtime == REFERENCE
        assert info["executor"] == "reference" and info["deployment_target"] == "iOS16"
        assert "not emulated" in info["compute_units"]
        with pytest.raises(UnavailableError, match="macOS"):
            open_runner(pkg, executor="coreml")
    runner.predict(val_set(32, 5).images)
    assert read_manifest(pkg, verify_hash=True).sha256 == before
    with pytest.raises(InputError, match="compute units"):
        open_runner(pkg, compute_units="gpu_only")
    with pytest.raises(InputError, match="unknown Core ML executor"):
        open_runner(pkg, executor="metal")


def test_cli_eval_runs_an_mlpackage(run_cli, coreml_export, random_ckpts, tmp_path):
    pkg = coreml_export(random_ckpts("attn_vgg11_eca"), "fp32", input="tensor", batch=4)
    code, out, err = run_cli(
        "eval", pkg, "--data", "builtin:digits", "--limit", "20", "--json", tmp_path / "e.json"
    )
    assert code == 0, err
    result = json.loads((tmp_path / "e.json").read_text())
    assert result["n"] == 20 and result["kind"] == "coreml"
    if not ON_MAC:
        assert result["runtime"] == REFERENCE
        assert "reference executor (Linux)" in " ".join(out.split())  # the table title (rich wraps it)


def test_cli_names_an_unsupported_op_and_exits_2(run_cli, tmp_path):
    """A program with an op the executor lacks is refused with the op's name (never skipped)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
        from coremltools.converters.mil import Builder as mb

    from edgeattn.manifest import ArtifactManifest, write_manifest
    from edgeattn.models.config import InputSpec

    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 3, 8, 8))], opset_version=ct.target.iOS17)
    def prog(x):
        y = mb.batch_to_space(x=x, block_shape=[2, 2], crops=[[0, 0], [0, 0]])
        return mb.reduce_mean(x=y, axes=[2, 3], keep_dims=False, name="logits")

    pkg = tmp_path / "odd.mlpackage"
    ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=ct.target.iOS17,
        pass_pipeline=ct.PassPipeline.EMPTY,
        skip_model_load=True,
    ).save(str(pkg))
    spec = InputSpec(size=(8, 8))
    write_manifest(
        pkg,
        ArtifactManifest("", "coreml", "fp32", {"name": "odd"}, spec.to_dict(), 3, input_shape=[4, 3, 8, 8]),
    )
    code, out, err = run_cli("eval", pkg, "--data", "builtin:digits")
    assert code == 2
    assert "batch_to_space" in err and "not implemented by the Core ML reference executor" in err
    assert "Traceback" not in err


# ------------------------------------------------------------------------ macOS: reference vs real Core ML
@pytest.mark.macos
@pytest.mark.skipif(not ON_MAC, reason="Core ML predictions (MLModel.predict) exist only on macOS")
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_reference_executor_agrees_with_core_ml(precision, coreml_export, trained):
    key = "mobilevit_xxs"
    pkg = coreml_export(trained(key), precision, input="tensor", batch=EVAL_BATCH)
    data = val_set(TINY[key]["input_size"], 300)
    core_ml = open_runner(pkg, executor="coreml", compute_units="cpu_only")
    assert core_ml.runtime == "Core ML (macOS)"
    reference = open_runner(pkg, executor="reference")
    a = core_ml.predict(data.images, batch_size=EVAL_BATCH)
    b = reference.predict(data.images, batch_size=EVAL_BATCH)
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.99
    assert float(np.abs(a - b).max()) <= (1e-3 if precision == "fp32" else 0.1)


# ------------------------------------------------------------------------ slow: the rest of the matrix
@pytest.mark.slow
@pytest.mark.parametrize("key", list(TINY))
def test_int8_weight_drift_matrix(key, coreml_export, trained):
    """Every zoo model's INT8-weight export validates on Linux; the drift vs FP32 is printed."""
    from edgeattn.validate import Gates, validate_artifact

    ckpt = trained(key)
    pkg = coreml_export(ckpt, "int8-weights", input="tensor", batch=EVAL_BATCH, weight_threshold=256)
    report = validate_artifact(
        pkg, ckpt, "builtin:digits", gates=Gates(max_top1_drop=None, min_agreement=90.0, max_kl=None)
    )
    m = report.metrics
    print(
        f"{key}: INT8 weights vs FP32: top-1 {m.artifact_top1:.2f} vs {m.reference_top1:.2f} %, agreement {m.agreement:.2f} %, "
        f"KL {m.kl:.2e}, max |logit error| {m.max_abs_logit_error:.3g}"
    )
    assert report.passed, [g.to_dict() for g in report.failed]


@pytest.mark.slow
@pytest.mark.parametrize(
    "target,expected_op",
    [("iOS18", "constexpr_blockwise_shift_scale"), ("iOS17", "constexpr_affine_dequantize")],
)
def test_int8_weights_for_newer_targets(target, expected_op, coreml_export, trained):
    key = "mobilevit_xxs"
    ckpt = trained(key)
    pkg = coreml_export(
        ckpt, "int8-weights", input="tensor", batch=EVAL_BATCH, weight_threshold=256, deployment_target=target
    )
    assert program_op_types(pkg)[expected_op] > 0
    runner = open_runner(pkg, executor="reference")
    data = val_set(TINY[key]["input_size"], 300)
    got = runner.predict(data.images, batch_size=EVAL_BATCH)
    want = torch_logits(ckpt, runner.prepare(data.images))
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.95


@pytest.mark.slow
@pytest.mark.parametrize("nbits", [4, 8])
def test_palettized_weights(nbits, coreml_export, trained, tmp_path):
    """coremltools' palettization (constexpr_lut_to_dense) of a zoo export runs and stays close to torch."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import coremltools as ct
        import coremltools.optimize as cto

    from edgeattn.manifest import write_manifest

    key = "mobilevit_xxs"
    ckpt = trained(key)
    src = coreml_export(ckpt, "fp16", input="tensor", batch=EVAL_BATCH)
    config = cto.coreml.OptimizationConfig(
        global_config=cto.coreml.OpPalettizerConfig(mode="kmeans", nbits=nbits, weight_threshold=256)
    )
    model = cto.coreml.palettize_weights(ct.models.MLModel(str(src), skip_model_load=True), config)
    pkg = tmp_path / f"palettized{nbits}.mlpackage"
    model.save(str(pkg))
    manifest = read_manifest(src)
    manifest.precision = f"palettized-{nbits}bit"
    write_manifest(pkg, manifest)
    assert program_op_types(pkg)["constexpr_lut_to_dense"] > 0
    runner = open_runner(pkg, executor="reference")
    data = val_set(TINY[key]["input_size"], 300)
    got = runner.predict(data.images, batch_size=EVAL_BATCH)
    want = torch_logits(ckpt, runner.prepare(data.images))
    agreement = float((got.argmax(1) == want.argmax(1)).mean())
    print(f"{key}: {nbits}-bit palettized weights vs torch: top-1 agreement {100 * agreement:.1f} %")
    assert agreement >= (0.97 if nbits == 8 else 0.8)
