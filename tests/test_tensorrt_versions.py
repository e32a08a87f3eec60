"""TensorRT 8.6, 10.x and 11.x without TensorRT: every flag the version policies use is checked against
that version's documented lists (edgeattn/export/tensorrt_support/, copied from NVIDIA's sources)."""

from __future__ import annotations

import re
import shlex

import pytest
import torch
from helpers.models import tiny_config

from edgeattn.checkpoint import ModelHandle
from edgeattn.errors import InputError
from edgeattn.export import exporter_for
from edgeattn.export.base import BatchSpec, ExportRequest
from edgeattn.export.tensorrt import BuildPlan, trtexec_command
from edgeattn.export.tensorrt_versions import (
    SUPPORT_DIR,
    TENSORRT_VERSIONS,
    fact_versions,
    facts_for,
    gpu_runs,
    load_facts,
    policy_for,
    tensorrt_target,
)

VERSIONS = fact_versions()
PRECISIONS = ("fp32", "fp16", "int8")


def strong_typing_choices(version: str) -> list[bool]:
    return {"unavailable": [False], "optional": [False, True], "always": [True]}[
        policy_for(version).strong_typing
    ]


def test_fact_files_name_their_source_and_cover_every_major_version():
    assert {"8.6", "10.0", "11.1"} <= set(VERSIONS)
    for path in sorted(SUPPORT_DIR.glob("*.txt")):
        header = path.read_text().splitlines()[0]
        assert header.startswith("# ") and ("github.com/" in header or "docs.nvidia.com" in header), path.name
        if "github.com/" in header:
            assert re.search(r"commit [0-9a-f]{40}", header), path.name
    for v in VERSIONS:
        facts = load_facts(v)
        assert len(facts.trtexec_options) > 80 and len(facts.onnx_ops) > 150 and facts.api_members
    assert {str(p.major) for _, p in TENSORRT_VERSIONS.items()} == {v.split(".")[0] for v in VERSIONS}


def test_the_lists_tell_the_versions_apart():
    """Negative controls: the checks below could fail — the flags that broke on real TensorRT are absent."""
    assert "--fp16" not in load_facts("11.1").trtexec_options  # removed in 11 (weak typing gone)
    assert "--int8" not in load_facts("11.1").trtexec_options
    assert "--stronglyTyped" not in load_facts("8.6").trtexec_options
    assert "BuilderFlag.FP16" not in load_facts("11.1").api_members
    assert "NetworkDefinitionCreationFlag.STRONGLY_TYPED" not in load_facts("8.6").api_members
    assert "NetworkDefinitionCreationFlag.EXPLICIT_BATCH" not in load_facts("11.1").api_members
    assert not load_facts("8.6").supports_op("Hardmax") and load_facts("10.0").supports_op("Hardmax")


@pytest.fixture(scope="module")
def request_for(tmp_path_factory):
    torch.manual_seed(0)
    handle = ModelHandle.new(tiny_config("attn_vgg11_linear"))
    folder = tmp_path_factory.mktemp("trt")
    exporter = exporter_for("tensorrt")

    def make(precision: str, dynamic: bool) -> ExportRequest:
        return ExportRequest(
            handle=handle,
            target="tensorrt",
            out=folder / "m.engine",
            precision=precision,
            batch=BatchSpec.range(1, 4, 16) if dynamic else BatchSpec.static(1),
            opset=17,
            options={**exporter.option_defaults, "workspace_mib": 512},
        )

    return make


@pytest.mark.parametrize("version", VERSIONS)
def test_printed_trtexec_commands_use_only_options_that_version_accepts(version, request_for, tmp_path):
    facts = load_facts(version)
    target = tensorrt_target(version)
    for precision in PRECISIONS:
        for strongly in strong_typing_choices(version):
            for dynamic in (False, True):
                req = request_for(precision, dynamic)
                plan = BuildPlan(target, strongly, target.policy.onnx_precision(precision, strongly))
                args = shlex.split(trtexec_command(req, tmp_path / "m.onnx", plan))
                assert args[0] == "trtexec"
                used = {a.split("=")[0] for a in args[1:]}
                assert used <= facts.trtexec_options, (
                    version,
                    precision,
                    strongly,
                    used - facts.trtexec_options,
                )
                assert (
                    "--memPoolSize=workspace:512" in args
                )  # a bare MiB number: parsed alike by every version
                if dynamic:
                    assert "--minShapes=input:1x3x32x32" in args and "--maxShapes=input:16x3x32x32" in args


def test_precision_flags_per_major_version():
    def flags(version: str, precision: str) -> list[str]:
        p = policy_for(version)
        return p.trtexec_flags(precision, p.strongly_typed(precision))

    assert flags("8.6", "fp16") == ["--fp16"] and flags("8.6", "int8") == ["--int8", "--fp16"]
    assert flags("10.3", "fp16") == ["--fp16"] and flags("10.3", "int8") == ["--stronglyTyped"]
    assert flags("11", "fp16") == [] and flags("11", "int8") == []  # the ONNX carries FP16 / Q/DQ types
    assert all(flags(v, "fp32") == ["--noTF32"] for v in ("8.6", "10", "11"))


@pytest.mark.parametrize("version", VERSIONS)
def test_builder_and_network_flags_exist_in_that_versions_python_api(version):
    members = load_facts(version).api_members
    policy = policy_for(version)
    assert "MemoryPoolType.WORKSPACE" in members
    for precision in PRECISIONS:
        for strongly in strong_typing_choices(version):
            network = {f"NetworkDefinitionCreationFlag.{n}" for n in policy.network_flags(strongly)}
            set_flags, clear_flags = policy.builder_flags(precision, strongly)
            builder = {f"BuilderFlag.{n}" for n in (*set_flags, *clear_flags)}
            assert network | builder <= members, (version, precision, strongly, (network | builder) - members)


def test_strong_typing_and_fp16_source_follow_the_version():
    assert policy_for("8.6").strongly_typed("int8") is False
    with pytest.raises(InputError, match="no strongly typed networks"):
        policy_for("8.6").strongly_typed("int8", requested=True)
    assert (
        policy_for("10.3").strongly_typed("int8") is True
        and policy_for("10.3").strongly_typed("fp16") is False
    )
    assert policy_for("10.3").strongly_typed("fp16", requested=True) is True
    with pytest.raises(InputError, match="strongly typed"):
        policy_for("11").strongly_typed("fp16", requested=False)
    # Where the network is strongly typed, FP16 comes from an FP16 ONNX; else from BuilderFlag.FP16.
    assert policy_for("11").onnx_precision("fp16", True) == "fp16"
    assert policy_for("10").onnx_precision("fp16", False) == "fp32"
    assert policy_for("10").onnx_precision("fp16", True) == "fp16"
    assert policy_for("8.6").onnx_precision("fp16", False, fp16_io=True) == "fp16"
    assert policy_for("8.6").onnx_precision("int8", False) == "int8"


def test_versions_resolve_to_the_nearest_older_facts():
    assert facts_for("8.6.2").version == "8.6"
    assert facts_for("10.3").version == "10.0"  # JetPack 6.1/6.2: the 10.0 lists are the safe bound
    assert facts_for("10").version == "10.0"
    assert facts_for("10.16.1.11").version == "10.16"
    assert facts_for("11.4.0.106").version == "11.1"
    for bad in ("8.5", "9.3", "7", "12.0"):
        with pytest.raises(InputError, match="not supported"):
            policy_for(bad)
    with pytest.raises(InputError, match="not a version number"):
        policy_for("latest")
    target = tensorrt_target("8.6")
    assert target.source == "requested" and target.policy.label == "8.6"


def test_without_tensorrt_the_newest_supported_version_is_the_default():
    from edgeattn.export.tensorrt_versions import installed_tensorrt_version

    if installed_tensorrt_version() is not None:
        pytest.skip("TensorRT is installed here: the default is the installed version")
    target = tensorrt_target(None)
    assert target.source == "default" and target.version == VERSIONS[-1]


def test_int8_and_fp16_need_a_gpu_that_runs_them():
    assert gpu_runs("int8", (8, 7)) and gpu_runs("int8", (9, 0)) and gpu_runs("int8", (6, 1))
    assert not gpu_runs("int8", (6, 2)) and not gpu_runs("int8", (5, 3)) and not gpu_runs("int8", (6, 0))
    assert not gpu_runs("fp16", (6, 1)) and gpu_runs("fp16", (5, 3)) and gpu_runs("fp16", (7, 2))
    assert gpu_runs("fp32", (5, 0))
