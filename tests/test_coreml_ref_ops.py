"""Op-level checks of the Core ML reference executor on small hand-built ML Programs.

Each case builds one MIL op with coremltools' own Builder, saves the program as a real .mlpackage
and runs it through `load_program(...).run`. The expected value comes from an oracle that is not the
executor: coremltools' own value inference of the op (its numpy reference, for ops that have one), or
the matching torch function. Cases are grouped into a few programs so the whole file converts only a
handful of packages (~1 s each).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    logging.getLogger("coremltools").setLevel(logging.ERROR)
    import coremltools as ct
    from coremltools.converters.mil import Builder as mb
    from coremltools.converters.mil.mil import Function
    from coremltools.optimize import _utils as ct_optimize_utils

from edgeattn.runtime.coreml_ref import UnsupportedOpError, implemented_ops, load_program, program_op_types

X_SHAPE = (2, 4, 6, 6)
RNG = np.random.RandomState(0)
X = RNG.randn(*X_SHAPE).astype(np.float32)


def save_program(prog: Any, path: Path, target: Any = ct.target.iOS17) -> Path:
    """Serialise a hand-built MIL program exactly as built (no graph passes) to an .mlpackage."""
    model = ct.convert(
        prog,
        convert_to="mlprogram",
        minimum_deployment_target=target,
        compute_precision=ct.precision.FLOAT32,
        pass_pipeline=ct.PassPipeline.EMPTY,
        skip_model_load=True,
    )
    model.save(str(path))
    return path


def t(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(x, dtype=np.float32))


def same_pad2d(x: torch.Tensor, k: int, s: int, d: int = 1, value: float = 0.0) -> torch.Tensor:
    pads = []
    for size in reversed(x.shape[2:]):
        out = math.ceil(size / s)
        total = max((out - 1) * s + (k - 1) * d + 1 - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads, value=value)


def depth_to_space_tf(x: np.ndarray, b: int) -> np.ndarray:
    """TensorFlow's depth_to_space (DCR) on NCHW, written the way TF documents it (NHWC)."""
    n, c, h, w = x.shape
    nhwc = x.transpose(0, 2, 3, 1).reshape(n, h, w, b, b, c // (b * b))
    return nhwc.transpose(0, 1, 3, 2, 4, 5).reshape(n, h * b, w * b, c // (b * b)).transpose(0, 3, 1, 2)


W3 = RNG.randn(6, 2, 3, 3).astype(np.float32)  # grouped conv weight (groups=2)
B3 = RNG.randn(6).astype(np.float32)
W1 = RNG.randn(3, 4, 3).astype(np.float32)  # conv1d weight
WL = RNG.randn(5, 6).astype(np.float32)
IDX = np.array([[1, 0], [3, 2]], np.int32)
GAMMA = RNG.rand(4).astype(np.float32) + 0.5
BETA = RNG.randn(4).astype(np.float32)
MEAN = RNG.randn(4).astype(np.float32)
VAR = RNG.rand(4).astype(np.float32) + 0.5
GAMMA6 = RNG.rand(6).astype(np.float32)
ZP4 = np.array([0, 10, 250, 128], np.uint8)


def quant_dequant_oracle(x: torch.Tensor) -> torch.Tensor:
    """uint8 per-channel (axis 1) quantize then dequantize, from the formulas of the MIL reference."""
    s = t(GAMMA / 50).view(1, -1, 1, 1)
    zp = t(ZP4).view(1, -1, 1, 1)
    q = torch.clamp(torch.round(x / s) + zp, 0, 255)
    return (q - zp) * s


# (case id, builder of the op from x (a Var in the program, a numpy array for coremltools' own
# value inference), torch oracle of x or None to use coremltools' value inference).
Case = tuple[str, Callable[[Any], Any], Callable[[torch.Tensor], Any] | None]

CASES: list[Case] = [
    # elementwise / activations (coremltools value inference is the oracle)
    ("add", lambda x: mb.add(x=x, y=np.float32(0.5)), None),
    ("sub", lambda x: mb.sub(x=x, y=np.float32(1.5)), None),
    ("mul", lambda x: mb.mul(x=x, y=x), None),
    ("real_div", lambda x: mb.real_div(x=x, y=np.float32(3.0)), None),
    ("pow", lambda x: mb.pow(x=mb.abs(x=x), y=np.float32(1.5)), None),
    ("maximum", lambda x: mb.maximum(x=x, y=np.float32(0.1)), None),
    ("minimum", lambda x: mb.minimum(x=x, y=np.float32(0.1)), None),
    ("floor_div", lambda x: mb.floor_div(x=x, y=np.float32(0.7)), None),
    ("mod", lambda x: mb.mod(x=x, y=np.float32(0.7)), None),
    ("greater", lambda x: mb.cast(x=mb.greater(x=x, y=np.float32(0.2)), dtype="fp32"), None),
    (
        "cast_int",
        lambda x: mb.cast(x=mb.cast(x=mb.mul(x=x, y=np.float32(3.0)), dtype="int32"), dtype="fp32"),
        None,
    ),
    (
        "select",
        lambda x: mb.select(cond=mb.less(x=x, y=np.float32(0.0)), a=x, b=mb.mul(x=x, y=np.float32(2.0))),
        None,
    ),
    ("clip", lambda x: mb.clip(x=x, alpha=np.float32(-0.5), beta=np.float32(0.7)), None),
    ("sqrt_abs", lambda x: mb.sqrt(x=mb.abs(x=x)), None),
    ("rsqrt", lambda x: mb.rsqrt(x=mb.abs(x=x), epsilon=np.float32(1e-3)), None),
    ("inverse", lambda x: mb.inverse(x=x, epsilon=np.float32(1e-2)), None),
    ("log", lambda x: mb.log(x=mb.abs(x=x), epsilon=np.float32(1e-3)), None),
    ("exp", lambda x: mb.exp(x=x), None),
    ("erf", lambda x: mb.erf(x=x), None),
    ("tanh", lambda x: mb.tanh(x=x), None),
    ("round", lambda x: mb.round(x=mb.mul(x=x, y=np.float32(2.0))), None),
    ("relu", lambda x: mb.relu(x=x), None),
    ("relu6", lambda x: mb.relu6(x=mb.mul(x=x, y=np.float32(5.0))), None),
    ("sigmoid", lambda x: mb.sigmoid(x=x), None),
    ("silu", lambda x: mb.silu(x=x), F.silu),
    ("elu", lambda x: mb.elu(x=x, alpha=np.float32(0.7)), None),
    ("leaky_relu", lambda x: mb.leaky_relu(x=x, alpha=np.float32(0.1)), None),
    ("gelu_exact", lambda x: mb.gelu(x=x, mode="EXACT"), None),
    ("gelu_tanh", lambda x: mb.gelu(x=x, mode="TANH_APPROXIMATION"), None),
    ("gelu_sigmoid", lambda x: mb.gelu(x=x, mode="SIGMOID_APPROXIMATION"), None),
    ("sigmoid_hard", lambda x: mb.sigmoid_hard(x=x, alpha=np.float32(0.3), beta=np.float32(0.4)), None),
    ("softplus", lambda x: mb.softplus(x=x), None),
    ("softsign", lambda x: mb.softsign(x=x), None),
    ("prelu", lambda x: mb.prelu(x=x, alpha=GAMMA), lambda x: F.prelu(x, t(GAMMA))),
    ("softmax", lambda x: mb.softmax(x=x, axis=1), None),
    # reductions
    ("reduce_sum", lambda x: mb.reduce_sum(x=x, axes=[1, 3], keep_dims=True), None),
    ("reduce_mean", lambda x: mb.reduce_mean(x=x, axes=[2, 3], keep_dims=False), None),
    ("reduce_max", lambda x: mb.reduce_max(x=x, axes=[1], keep_dims=True), None),
    ("reduce_min", lambda x: mb.reduce_min(x=x, axes=[-1], keep_dims=False), None),
    ("reduce_prod", lambda x: mb.reduce_prod(x=x, axes=[3], keep_dims=False), None),
    ("reduce_l2", lambda x: mb.reduce_l2_norm(x=x, axes=[2, 3], keep_dims=True), None),
    ("reduce_lse", lambda x: mb.reduce_log_sum_exp(x=x, axes=[1, 2], keep_dims=True), None),
    (
        "reduce_argmax",
        lambda x: mb.cast(x=mb.reduce_argmax(x=x, axis=2, keep_dims=False), dtype="fp32"),
        None,
    ),
    # normalisations
    ("layer_norm_13", lambda x: mb.layer_norm(x=x, axes=[1, 3], epsilon=np.float32(1e-5)), None),
    (
        "layer_norm_last",
        lambda x: mb.layer_norm(
            x=x, axes=[-1], gamma=GAMMA6, beta=np.ones(6, np.float32), epsilon=np.float32(1e-5)
        ),
        lambda x: F.layer_norm(x, (6,), t(GAMMA6), torch.ones(6), eps=1e-5),
    ),
    (
        "batch_norm",
        lambda x: mb.batch_norm(
            x=x, mean=MEAN, variance=VAR, gamma=GAMMA, beta=BETA, epsilon=np.float32(1e-3)
        ),
        lambda x: F.batch_norm(x, t(MEAN), t(VAR), t(GAMMA), t(BETA), eps=1e-3),
    ),
    (
        "instance_norm",
        lambda x: mb.instance_norm(x=x, gamma=GAMMA, beta=BETA, epsilon=np.float32(1e-5)),
        lambda x: F.instance_norm(x, weight=t(GAMMA), bias=t(BETA), eps=1e-5),
    ),
    ("l2_norm", lambda x: mb.l2_norm(x=x, epsilon=np.float32(1e-6)), None),
    # convolution, linear, pooling (torch is the oracle)
    (
        "conv_same_grouped",
        lambda x: mb.conv(
            x=x, weight=W3, bias=B3, strides=[2, 2], pad_type="same", dilations=[1, 1], groups=2
        ),
        lambda x: F.conv2d(same_pad2d(x, 3, 2), t(W3), t(B3), stride=2, groups=2),
    ),
    (
        "conv_custom_dilated",
        lambda x: mb.conv(
            x=x, weight=W3[:, :, :, :], pad_type="custom", pad=[2, 1, 0, 2], dilations=[2, 1], groups=2
        ),
        lambda x: F.conv2d(F.pad(x, [0, 2, 2, 1]), t(W3), dilation=(2, 1), groups=2),
    ),
    (
        "conv1d",
        lambda x: mb.conv(
            x=mb.reshape(x=x, shape=[2, 4, 36]), weight=W1, pad_type="custom", pad=[1, 1], strides=[1]
        ),
        lambda x: F.conv1d(x.reshape(2, 4, 36), t(W1), padding=1),
    ),
    (
        "linear",
        lambda x: mb.linear(x=x, weight=WL, bias=np.arange(5, dtype=np.float32)),
        lambda x: F.linear(x, t(WL), torch.arange(5.0)),
    ),
    (
        "matmul_t",
        lambda x: mb.matmul(x=x, y=x, transpose_y=True),
        lambda x: x @ x.transpose(-1, -2),
    ),
    (
        "max_pool_ceil",
        lambda x: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="valid", ceil_mode=True),
        lambda x: F.max_pool2d(x, 3, 2, ceil_mode=True),
    ),
    (
        "max_pool_same",
        lambda x: mb.max_pool(x=x, kernel_sizes=[3, 3], strides=[2, 2], pad_type="same"),
        lambda x: F.max_pool2d(same_pad2d(x, 3, 2, value=-math.inf), 3, 2),
    ),
    (
        "avg_pool_excl",
        lambda x: mb.avg_pool(
            x=x,
            kernel_sizes=[3, 3],
            strides=[1, 1],
            pad_type="custom",
            pad=[1, 1, 1, 1],
            exclude_padding_from_average=True,
        ),
        lambda x: F.avg_pool2d(x, 3, 1, padding=1, count_include_pad=False),
    ),
    (
        "avg_pool_same_incl",
        lambda x: mb.avg_pool(
            x=x, kernel_sizes=[2, 2], strides=[1, 1], pad_type="same", exclude_padding_from_average=False
        ),
        lambda x: F.avg_pool2d(F.pad(x, [0, 1, 0, 1]), 2, 1),
    ),
    # shapes and indexing (coremltools value inference, or torch)
    ("reshape0", lambda x: mb.reshape(x=x, shape=[0, -1, 0]), None),
    ("transpose", lambda x: mb.transpose(x=x, perm=[0, 2, 3, 1]), None),
    ("concat", lambda x: mb.concat(values=[x, mb.mul(x=x, y=np.float32(2.0))], axis=2), None),
    (  # coremltools' value inference ignores `interleave`: the oracle is the op's documented layout
        "concat_interleave",
        lambda x: mb.concat(values=[x, mb.mul(x=x, y=np.float32(2.0))], axis=1, interleave=True),
        lambda x: torch.stack([x, 2 * x], dim=2).reshape(2, 8, 6, 6),
    ),
    ("split_sizes", lambda x: mb.split(x=x, split_sizes=[1, 3], axis=1)[1], None),
    ("split_num", lambda x: mb.split(x=x, num_splits=3, axis=-1)[2], None),
    ("stack", lambda x: mb.stack(values=[x, x], axis=2), None),
    (
        "slice_by_index",
        lambda x: mb.slice_by_index(x=x, begin=[0, 1, 5, 0], end=[2, 4, 0, 6], stride=[1, 2, -2, 1]),
        None,
    ),
    (
        "slice_masks",
        lambda x: mb.slice_by_index(
            x=x,
            begin=[1, 0, 2, -3],
            end=[0, 3, 0, -1],
            begin_mask=[False, True, False, False],
            end_mask=[True, False, True, False],
            squeeze_mask=[False, False, False, False],
        ),
        None,
    ),
    (
        "slice_squeeze",
        lambda x: mb.slice_by_index(
            x=x, begin=[0, 2, 0, 0], end=[2, 3, 6, 6], squeeze_mask=[False, True, False, False]
        ),
        None,
    ),
    ("slice_by_size", lambda x: mb.slice_by_size(x=x, begin=[0, 1, 2, 0], size=[-1, 2, 3, -1]), None),
    ("gather", lambda x: mb.gather(x=x, indices=IDX, axis=1), None),
    (
        "gather_along_axis",
        lambda x: mb.gather_along_axis(x=x, indices=np.zeros((2, 4, 3, 6), np.int32) + 2, axis=2),
        None,
    ),
    ("squeeze", lambda x: mb.squeeze(x=mb.reduce_mean(x=x, axes=[2], keep_dims=True), axes=[2]), None),
    ("expand_dims", lambda x: mb.expand_dims(x=mb.reshape(x=x, shape=[2, 24, 6]), axes=[0, -1]), None),
    ("tile", lambda x: mb.tile(x=x, reps=[1, 2, 1, 3]), None),
    (
        "pad_constant",
        lambda x: mb.pad(x=x, pad=[1, 2, 0, 3], mode="constant", constant_val=np.float32(0.5)),
        None,
    ),
    ("pad_reflect", lambda x: mb.pad(x=x, pad=[1, 2, 0, 3], mode="reflect"), None),
    ("pad_replicate", lambda x: mb.pad(x=x, pad=[2, 2, 1, 0], mode="replicate"), None),
    ("flatten2d", lambda x: mb.flatten2d(x=x, axis=2), None),
    ("reverse", lambda x: mb.reverse(x=x, axes=[1, 3]), None),
    ("band_part", lambda x: mb.band_part(x=x, lower=1, upper=0), None),
    ("topk", lambda x: mb.topk(x=x, k=2, axis=1)[0], None),
    ("pixel_shuffle", lambda x: mb.pixel_shuffle(x=x, upscale_factor=2), lambda x: F.pixel_shuffle(x, 2)),
    (
        "depth_to_space",
        lambda x: mb.depth_to_space(x=x, block_size=2),
        lambda x: t(depth_to_space_tf(x.numpy(), 2)),
    ),
    (  # space_to_depth is the inverse of depth_to_space
        "space_to_depth_roundtrip",
        lambda x: mb.depth_to_space(x=mb.space_to_depth(x=x, block_size=2), block_size=2),
        lambda x: x,
    ),
    # resampling (torch is the oracle where a torch mode matches the MIL sampling grid)
    (
        "upsample_bilinear_half",
        lambda x: mb.upsample_bilinear(
            x=x, scale_factor_height=2.0, scale_factor_width=3.0, align_corners=False, half_pixel_centers=True
        ),
        lambda x: F.interpolate(x, scale_factor=(2.0, 3.0), mode="bilinear", align_corners=False),
    ),
    (
        "upsample_bilinear_align",
        lambda x: mb.upsample_bilinear(
            x=x, scale_factor_height=2.0, scale_factor_width=2.0, align_corners=True
        ),
        lambda x: F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True),
    ),
    (
        "upsample_nearest",
        lambda x: mb.upsample_nearest_neighbor(x=x, scale_factor_height=2.0, scale_factor_width=3.0),
        lambda x: F.interpolate(x, scale_factor=(2.0, 3.0), mode="nearest"),
    ),
    (
        "resize_bilinear_unalign",
        lambda x: mb.resize_bilinear(
            x=x, target_size_height=9, target_size_width=4, sampling_mode="UNALIGN_CORNERS"
        ),
        lambda x: F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=False),
    ),
    (
        "resize_bilinear_strict",
        lambda x: mb.resize_bilinear(
            x=x, target_size_height=9, target_size_width=4, sampling_mode="STRICT_ALIGN_CORNERS"
        ),
        lambda x: F.interpolate(x, size=(9, 4), mode="bilinear", align_corners=True),
    ),
    # activation quantization (iOS17 quantize / dequantize; value inference is coremltools' numpy)
    (
        "quantize_int8",
        lambda x: mb.cast(
            x=mb.quantize(input=x, scale=np.float32(0.02), zero_point=np.int8(3), output_dtype="int8"),
            dtype="fp32",
        ),
        None,
    ),
    (
        "quant_dequant_per_channel",
        lambda x: mb.dequantize(
            input=mb.quantize(input=x, scale=GAMMA / 50, zero_point=ZP4, axis=1, output_dtype="uint8"),
            scale=GAMMA / 50,
            zero_point=ZP4,
            axis=1,
        ),
        quant_dequant_oracle,
    ),
]


def mil_value(build: Callable[[Any], Any]) -> np.ndarray | None:
    """coremltools' own value inference of the op applied to the constant X (None if it has none)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Function({}, opset_version=ct.target.iOS17):
            var = build(X)
    return None if var.val is None else np.asarray(var.val, dtype=np.float32)


@pytest.fixture(scope="module")
def case_program(tmp_path_factory) -> tuple[Path, dict[str, np.ndarray]]:
    """All cases as outputs of one program: its path, and its outputs (by case id) from one run."""

    @mb.program(input_specs=[mb.TensorSpec(shape=X_SHAPE)], opset_version=ct.target.iOS17)
    def prog(x):
        return tuple(mb.identity(x=build(x), name=name) for name, build, _ in CASES)

    path = save_program(prog, tmp_path_factory.mktemp("ops") / "cases.mlpackage")
    return path, load_program(path).run({"x": X})


@pytest.mark.parametrize("name,build,oracle", CASES, ids=[c[0] for c in CASES])
def test_op_matches_oracle(case_program, name, build, oracle):
    got = np.asarray(case_program[1][name], dtype=np.float32)
    if oracle is None:
        want = mil_value(build)
        assert want is not None, (
            f"{name}: coremltools has no value inference for this op; give the case a torch oracle"
        )
    else:
        with torch.no_grad():
            want = np.asarray(oracle(t(X)), dtype=np.float32)
    assert got.shape == want.shape, name
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=name)


def test_case_program_holds_the_ops_under_test(case_program):
    """The serialised program really contains the ops the cases test (none was folded to a constant)."""
    ops = program_op_types(case_program[0])
    wanted = {
        "floor_div",
        "reduce_argmax",
        "reduce_l2_norm",
        "reduce_log_sum_exp",
        "layer_norm",
        "batch_norm",
        "instance_norm",
    }
    wanted |= {name for name, _, _ in CASES} & set(implemented_ops())
    wanted |= {
        "conv",
        "max_pool",
        "avg_pool",
        "slice_by_index",
        "gather_along_axis",
        "quantize",
        "dequantize",
        "upsample_bilinear",
    }
    assert wanted <= set(ops), sorted(wanted - set(ops))
    assert len(ops) >= 60


# ----------------------------------------------------------------- FP16: rounding after every op
def test_fp16_program_rounds_after_every_op(tmp_path):
    """An FP16 program computes each op and rounds its result to fp16, as numpy float16 does per op:
    the overflow of 300 * 300 to inf and the loss of 1e-4 next to 1.0 must both show."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(4,))], opset_version=ct.target.iOS16)
    def prog(x):
        h = mb.cast(x=x, dtype="fp16")
        sq = mb.mul(x=h, y=h)
        plus = mb.add(x=sq, y=np.float16(1e-4))
        minus = mb.sub(x=plus, y=sq)
        return mb.cast(x=sq, dtype="fp32", name="sq"), mb.cast(x=minus, dtype="fp32", name="minus")

    x = np.array([300.0, 1.0, 0.1, 3.3333], np.float32)
    out = load_program(save_program(prog, tmp_path / "fp16.mlpackage", ct.target.iOS16)).run({"x": x})
    h = x.astype(np.float16)
    sq = h * h
    want_minus = (sq + np.float16(1e-4)) - sq
    assert np.isinf(out["sq"][0])
    np.testing.assert_array_equal(out["sq"], sq.astype(np.float32))
    np.testing.assert_array_equal(out["minus"], want_minus.astype(np.float32))
    assert out["minus"][1] == 0.0  # 1 + 1e-4 rounds back to 1 in fp16; fp32 would keep it


# ----------------------------------------------------------------- compressed weights (constexpr_*)
def _packed(indices: np.ndarray, nbits: int) -> np.ndarray:
    return ct_optimize_utils.pack_elements_into_bits(indices.astype(np.uint8), nbits)


def _constexpr_cases() -> list[tuple[str, Any, Callable[[], Any]]]:
    """(id, deployment target, builder of the constexpr op); the oracle is coremltools' own decompression.
    The data is drawn once here: each builder is called twice (oracle and program) on the same arrays."""
    from coremltools.converters.mil.mil import types

    r = np.random.RandomState(1)
    q = r.randint(-128, 128, size=(6, 5)).astype(np.int8)
    zp = np.array([0, 1, -2, 3, 0, 5], np.int8)
    scale6 = r.rand(6).astype(np.float32) / 10
    half = r.randn(6, 5).astype(np.float16)
    idx4 = r.randint(0, 16, size=(6, 5))
    lut16 = r.randn(16).astype(np.float32)
    mask = (r.rand(6, 5) > 0.5).astype(np.uint8)
    nonzero = r.randn(int(mask.sum())).astype(np.float32)
    data8 = r.randint(-128, 128, size=(6, 8)).astype(np.int8)
    block_scale = r.rand(6, 2).astype(np.float32) / 10
    block_offset = r.randint(-3, 3, size=(6, 2)).astype(np.int8)
    block_lut = r.randn(2, 1, 16, 1).astype(np.float32)
    vec_idx = r.randint(0, 4, size=(3, 5)).astype(np.uint8).astype(types.np_uint2_dtype)
    vec_lut = r.randn(1, 1, 4, 2).astype(np.float32)
    return [
        (
            "affine_dequantize_per_channel",
            ct.target.iOS16,
            lambda: mb.constexpr_affine_dequantize(quantized_data=q, zero_point=zp, scale=scale6, axis=0),
        ),
        (
            "affine_dequantize_uint8_scalar",
            ct.target.iOS16,
            lambda: mb.constexpr_affine_dequantize(
                quantized_data=(q.astype(np.int16) + 128).astype(np.uint8),
                zero_point=np.uint8(128),
                scale=np.float32(0.03),
                axis=1,
            ),
        ),
        ("cast_fp16", ct.target.iOS16, lambda: mb.constexpr_cast(source_val=half, output_dtype="fp32")),
        (
            "lut_to_dense_ios16",
            ct.target.iOS16,
            lambda: mb.constexpr_lut_to_dense(
                indices=_packed(idx4.reshape(-1), 4), lut=lut16, shape=np.array([6, 5], np.uint32)
            ),
        ),
        (
            "sparse_to_dense_ios16",
            ct.target.iOS16,
            lambda: mb.constexpr_sparse_to_dense(
                nonzero_data=nonzero,
                mask=np.packbits(mask.reshape(-1), bitorder="little"),
                shape=np.array([6, 5], np.uint32),
            ),
        ),
        (
            "blockwise_shift_scale_ios18",
            ct.target.iOS18,
            lambda: mb.constexpr_blockwise_shift_scale(data=data8, scale=block_scale, offset=block_offset),
        ),
        (
            "lut_to_dense_ios18_blockwise",
            ct.target.iOS18,
            lambda: mb.constexpr_lut_to_dense(
                indices=idx4.astype(np.uint8).astype(types.np_uint4_dtype), lut=block_lut
            ),
        ),
        (
            "lut_to_dense_ios18_vector",
            ct.target.iOS18,
            lambda: mb.constexpr_lut_to_dense(indices=vec_idx, lut=vec_lut, vector_axis=0),
        ),
    ]


CONSTEXPR = _constexpr_cases()


def _constexpr_program(cases: list[tuple[str, Callable[[], Any]]], target: Any) -> Any:
    @mb.program(input_specs=[mb.TensorSpec(shape=(1,))], opset_version=target)
    def prog(x):
        zero = mb.mul(x=x, y=np.float32(0.0))
        return tuple(mb.add(x=build(), y=zero, name=name) for name, build in cases)

    return prog


@pytest.fixture(scope="module")
def constexpr_outputs(tmp_path_factory) -> dict[str, np.ndarray]:
    """One program per deployment target holding all its constexpr cases (each output = w + 0 * x)."""
    outputs: dict[str, np.ndarray] = {}
    for target in (ct.target.iOS16, ct.target.iOS18):
        cases = [(name, build) for name, tgt, build in CONSTEXPR if tgt == target]
        prog = _constexpr_program(cases, target)
        path = save_program(prog, tmp_path_factory.mktemp("constexpr") / f"{target.name}.mlpackage", target)
        ops = program_op_types(path)
        assert sum(n for op, n in ops.items() if op.startswith("constexpr_")) >= len(cases), (
            "a compressed weight was folded away"
        )
        outputs.update(load_program(path).run({"x": np.zeros(1, np.float32)}))
    return outputs


@pytest.mark.parametrize("name,target,build", CONSTEXPR, ids=[c[0] for c in CONSTEXPR])
def test_constexpr_weights_decompress_like_coremltools(constexpr_outputs, name, target, build):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Function({}, opset_version=target):
            expected = np.asarray(build().op.materialized_val_inference(), np.float32)
    np.testing.assert_allclose(constexpr_outputs[name], expected, rtol=1e-6, atol=1e-7)


# ----------------------------------------------------------------- refusing what it cannot run
def test_unsupported_op_is_refused_by_name(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(4, 4, 4, 4))], opset_version=ct.target.iOS17)
    def prog(x):
        y = mb.relu(x=x)
        return mb.batch_to_space(x=y, block_shape=[2, 2], crops=[[0, 0], [0, 0]], name="my_bts")

    path = save_program(prog, tmp_path / "bts.mlpackage")
    assert "batch_to_space" not in implemented_ops()
    with pytest.raises(UnsupportedOpError) as err:
        load_program(path)
    message = str(err.value)
    assert "'batch_to_space'" in message and "my_bts" in message and "not implemented" in message
    assert err.value.op_type == "batch_to_space"
    from edgeattn.runtime.coreml_ref.__main__ import main

    assert main([str(path)]) == 1  # the op listing flags it too


def test_inputs_are_checked_against_the_program(tmp_path):
    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3))], opset_version=ct.target.iOS17)
    def prog(x):
        return mb.relu(x=x, name="y")

    program = load_program(save_program(prog, tmp_path / "relu.mlpackage"))
    from edgeattn.errors import InputError

    with pytest.raises(InputError, match=r"shape \[2, 3\].*expects"):
        program.run({"x": np.zeros((2, 3), np.float32)})
    with pytest.raises(InputError, match="was not given"):
        program.run({"other": np.zeros((1, 3), np.float32)})


def test_not_an_mlpackage_is_a_clear_input_error(tmp_path):
    from edgeattn.errors import InputError

    bogus = tmp_path / "model.mlpackage"
    bogus.mkdir()
    with pytest.raises(InputError, match="cannot read the Core ML model"):
        load_program(bogus)
    with pytest.raises(InputError, match="not an .mlpackage"):
        load_program(tmp_path)


def test_image_input_is_an_8bit_picture_in_the_models_color_order(tmp_path):
    """An ImageType input gets RGB pictures: pixels rounded/clipped to 0..255, channels reordered for a
    BGR model, then the image's scale/bias (ops coremltools put in the program) apply."""

    @mb.program(input_specs=[mb.TensorSpec(shape=(1, 3, 2, 2))], opset_version=ct.target.iOS16)
    def prog(image):
        return mb.identity(x=image, name="out")

    model = ct.convert(
        prog,
        convert_to="mlprogram",
        inputs=[
            ct.ImageType(
                name="image",
                shape=(1, 3, 2, 2),
                color_layout=ct.colorlayout.BGR,
                scale=2.0,
                bias=[1.0, 2.0, 3.0],
            )
        ],
        minimum_deployment_target=ct.target.iOS16,
        compute_precision=ct.precision.FLOAT32,
        skip_model_load=True,
    )
    model.save(str(tmp_path / "img.mlpackage"))
    program = load_program(tmp_path / "img.mlpackage")
    assert program.inputs[0].image == "BGR"
    rgb = np.arange(12, dtype=np.float32).reshape(1, 3, 2, 2) + 0.4
    rgb[0, 0, 0, 0] = 300.0  # past 8 bits: clipped to 255
    out = program.run({"image": rgb})["out"]
    pixels = np.clip(np.rint(rgb), 0, 255)[:, ::-1]  # what Core ML's BGR pixel buffer holds
    want = pixels * 2.0 + np.array([1.0, 2.0, 3.0], np.float32).reshape(1, 3, 1, 1)
    np.testing.assert_array_equal(out, want)
