"""INT8 formats chosen for the CPU that runs the model: real /proc/cpuinfo flag sets parse into the
right onnxruntime placement, `--cpu-int8` (CLI and recipe) overrides the detection, the VNNI policy's
ONNX uses the full int8 weight range while the AVX2 policy's stays 7-bit, and `edgeattn quantize`
names the policy it chose (report, JSON, checkpoint history, export manifest)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import yaml
from onnx import numpy_helper

from edgeattn.device import agent
from edgeattn.device.cpu import CPU_INT8_KINDS, cpu_int8
from edgeattn.device.facts import int8_line
from edgeattn.quantize.config import CpuInt8Choice, QuantizeConfig
from edgeattn.quantize.placement import CPU_INT8_CHOICES, PLACEMENTS, choose_policy

KEY = "attn_vgg11_linear"

# Real /proc/cpuinfo excerpts (one processor each).
HASWELL = """processor\t: 0
model name\t: Intel(R) Xeon(R) CPU E5-2680 v3 @ 2.50GHz
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc aperfmperf eagerfpu pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 sdbg fma cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm epb fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid cqm xsaveopt cqm_llc cqm_occup_llc dtherm ida arat pln pts
"""
EPYC_GENOA = """processor\t: 0
model name\t: AMD EPYC 9454 48-Core Processor
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush mmx fxsr sse sse2 ht syscall nx mmxext fxsr_opt pdpe1gb rdtscp lm constant_tsc rep_good nopl xtopology nonstop_tsc cpuid extd_apicid tsc_known_freq pni pclmulqdq ssse3 fma cx16 pcid sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand hypervisor lahf_lm cmp_legacy cr8_legacy abm sse4a misalignsse 3dnowprefetch osvw topoext vmmcall fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid avx512f avx512dq rdseed adx smap avx512ifma clflushopt clwb avx512cd sha_ni avx512bw avx512vl xsaveopt xsavec xgetbv1 xsaves avx512_bf16 clzero xsaveerptr arat avx512vbmi umip avx512_vbmi2 gfni vaes vpclmulqdq avx512_vnni avx512_bitalg avx512_vpopcntdq rdpid fsrm
"""
ALDER_LAKE = """processor\t: 0
model name\t: 12th Gen Intel(R) Core(TM) i7-1260P
flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc art arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc cpuid aperfmperf tsc_known_freq pni pclmulqdq dtes64 monitor ds_cpl vmx est tm2 ssse3 sdbg fma cx16 xtpr pdcm sse4_1 sse4_2 x2apic movbe popcnt tsc_deadline_timer aes xsave avx f16c rdrand lahf_lm abm 3dnowprefetch cpuid_fault epb ssbd ibrs ibpb stibp ibrs_enhanced fsgsbase tsc_adjust bmi1 avx2 smep bmi2 erms invpcid rdseed adx smap clflushopt clwb intel_pt sha_ni xsaveopt xsavec xgetbv1 xsaves avx_vnni dtherm ida arat pln pts hwp umip pku ospke waitpkg gfni vaes vpclmulqdq rdpid movdiri movdir64b fsrm md_clear serialize arch_lbr flush_l1d arch_capabilities
"""
GRAVITON2 = """processor\t: 0
BogoMIPS\t: 243.75
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp ssbs
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd0c
"""
RASPBERRY_PI_4 = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU part\t: 0xd08
"""


@pytest.mark.parametrize(
    ("cpuinfo", "kind", "weights_7bit", "evidence"),
    [
        (HASWELL, "avx2", True, "has avx2 but no VNNI"),
        (EPYC_GENOA, "vnni", False, "has avx512_vnni"),
        (ALDER_LAKE, "vnni", False, "has avx_vnni"),
        (GRAVITON2, "arm-dotprod", False, "has asimddp"),
        (RASPBERRY_PI_4, "none", True, "has neither"),
    ],
)
def test_real_cpu_flags_choose_the_onnxruntime_policy(cpuinfo, kind, weights_7bit, evidence):
    facts = agent.cpu_facts(cpuinfo)  # the same parser a device's agent reports its facts with
    assert cpu_int8(facts).kind == kind
    policy = choose_policy("onnxruntime", "auto", facts)
    assert policy.label == f"onnxruntime/{kind}" and policy.name == "onnxruntime"
    assert policy.weights_7bit is weights_7bit
    assert evidence in policy.reason and ("7-bit" in policy.reason) is weights_7bit
    # a device's recorded facts block (as `edgeattn device check` keeps it) decides the same way
    recorded = json.loads(json.dumps({k: facts[k] for k in ("model", "simd_flags", "int8_dot_flags")}))
    assert choose_policy("onnxruntime", "auto", recorded).label == policy.label
    assert ("yes" if kind in ("vnni", "arm-dotprod") else "no") in int8_line(facts)


def test_override_wins_over_detection_and_tensorrt_ignores_the_cpu():
    vnni = agent.cpu_facts(EPYC_GENOA)
    pinned = choose_policy("onnxruntime", "avx2", vnni)
    assert pinned.label == "onnxruntime/avx2" and pinned.weights_7bit and "--cpu-int8 avx2" in pinned.reason
    trt = choose_policy("tensorrt", "avx2", vnni)
    base = PLACEMENTS.get("tensorrt")
    assert trt.label == "tensorrt" and trt.reason
    assert (trt.weights_7bit, trt.min_macs_per_output, trt.signed_per_tensor_activations) == (
        base.weights_7bit,
        base.min_macs_per_output,
        base.signed_per_tensor_activations,
    )
    # one variant per kind, and the config's choices are exactly the kinds plus auto
    assert set(CPU_INT8_CHOICES) == {"auto", *CPU_INT8_KINDS} == set(CpuInt8Choice.__args__)
    assert set(PLACEMENTS.get("onnxruntime").cpu_variants) == set(CPU_INT8_KINDS)


def test_recipe_key_reaches_the_quantize_config_and_bad_values_are_one_line(tmp_path):
    from edgeattn.errors import InputError
    from edgeattn.pipeline import load_recipe

    def recipe(ptq):
        path = tmp_path / "r.yaml"
        data = {
            "model": {"name": "attn_vgg11", "input_size": 32},
            "train": {},
            "quantize": {"ptq": ptq},
            "export": {"targets": [{"target": "onnx", "precisions": ["int8"]}]},
        }
        path.write_text(yaml.safe_dump(data))
        return load_recipe(path).recipe

    config = recipe({"cpu_int8": "avx2"}).quantize.methods["ptq"].config(qat=False, runtime="onnxruntime")
    assert isinstance(config, QuantizeConfig) and config.cpu_int8 == "avx2"
    assert recipe({}).quantize.methods["ptq"].cpu_int8 == "auto"
    with pytest.raises(InputError) as exc:
        recipe({"cpu_int8": "sse"})
    assert "cpu_int8" in exc.value.one_line() and "\n" not in exc.value.one_line()


def test_bad_cli_value_is_one_clear_line(run_cli, trained, tmp_path):
    out = tmp_path / "q.pt"
    code, stdout, stderr = run_cli(
        "quantize", trained(KEY), "--data", "builtin:digits", "--cpu-int8", "sse", "--out", out
    )
    assert code == 2 and "--cpu-int8" in stdout + stderr and "Traceback" not in stdout + stderr
    assert not out.exists()


def int8_weights(path) -> list[np.ndarray]:
    model = onnx.load(str(path))
    return [
        numpy_helper.to_array(i)
        for i in model.graph.initializer
        if i.data_type == onnx.TensorProto.INT8 and len(i.dims) >= 2
    ]


@pytest.fixture(scope="module")
def quantized_per_kind(tmp_path_factory, trained):
    """The same trained tiny model quantized through the CLI with the VNNI and the AVX2 policy."""
    from edgeattn.cli.app import main

    d = tmp_path_factory.mktemp("cpu-int8")
    made = {}
    for kind in ("vnni", "avx2"):
        out, js = d / f"{kind}.pt", d / f"{kind}.json"
        try:
            main(["quantize", str(trained(KEY)), "--data", "builtin:digits", "--calib-size", "32",
                  "--cpu-int8", kind, "--out", str(out), "--json", str(js)])  # fmt: skip
        except SystemExit as exc:
            assert exc.code in (0, None), f"quantize exited {exc.code}"
        made[kind] = (out, json.loads(js.read_text()))
    return made


def test_vnni_policy_uses_full_int8_weights_and_avx2_stays_7bit(quantized_per_kind, tmp_path):
    from edgeattn.export import export_artifact
    from edgeattn.manifest import read_manifest

    ranges = {}
    for kind, (ckpt, summary) in quantized_per_kind.items():
        assert summary["policy"] == f"onnxruntime/{kind}" and summary["policy_reason"]
        onnx_path = tmp_path / f"{kind}.onnx"
        export_artifact(ckpt, "onnx", onnx_path, precision="int8")
        weights = int8_weights(onnx_path)
        assert len(weights) == summary["int8_layers"]
        # per output channel: the largest |weight| (NNCF scales each channel to its own range)
        ranges[kind] = np.concatenate([np.abs(w.reshape(w.shape[0], -1).astype(int)).max(1) for w in weights])
        history = read_manifest(onnx_path).history
        step = next(h for h in history if h["step"] == "quantize")
        assert (
            step["placement"] == f"onnxruntime/{kind}"
            and step["placement_reason"] == summary["policy_reason"]
        )
    assert ranges["avx2"].max() <= 64  # 7-bit weights: every pair of u8*s8 products fits in int16
    assert ranges["vnni"].max() == 127 and np.mean(ranges["vnni"] > 64) > 0.9  # the full int8 range
    # --preset auto: VNNI gets asymmetric uint8 activations (onnxruntime's U8S8), AVX2 symmetric ones
    assert quantized_per_kind["vnni"][1]["preset"] == "mixed"
    assert quantized_per_kind["avx2"][1]["preset"] == "performance"
    zero_points = {kind: activation_zero_points(tmp_path / f"{kind}.onnx") for kind in ranges}
    assert any(z.dtype == np.uint8 and np.any((z != 0) & (z != 128)) for z in zero_points["vnni"])
    symmetric = [np.all(z == 0) or (z.dtype == np.uint8 and np.all(z == 128)) for z in zero_points["avx2"]]
    assert symmetric and all(symmetric)


def activation_zero_points(path) -> list[np.ndarray]:
    """Zero points of the activation QuantizeLinear nodes (weights are folded into initializers)."""
    model = onnx.load(str(path))
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return [
        inits[n.input[2]] for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[2] in inits
    ]


def test_preset_auto_is_the_runtime_fast_format_for_the_cpu():
    vnni = choose_policy("onnxruntime", "auto", agent.cpu_facts(EPYC_GENOA))
    assert vnni.resolve_preset("auto") == "mixed" and "uint8 activations" in vnni.reason
    assert vnni.resolve_preset("performance") == "performance"  # an explicit preset wins
    for kind in ("avx2", "none", "arm-dotprod"):
        assert choose_policy("onnxruntime", kind).resolve_preset("auto") == "performance"
    assert choose_policy("tensorrt", "auto").resolve_preset("auto") == "performance"  # symmetric only
    assert QuantizeConfig().preset == "auto"


def test_quantize_output_names_the_detected_policy(quantized_per_kind, run_cli, trained, tmp_path):
    out, js = tmp_path / "auto.pt", tmp_path / "auto.json"
    code, stdout, _ = run_cli(
        "quantize", trained(KEY), "--data", "builtin:digits", "--calib-size", "16", "--out", out, "--json", js
    )
    assert code == 0, stdout
    found = cpu_int8()  # this machine's kind, whatever it is
    label = f"onnxruntime/{found.kind}"
    assert f"placement {label}: this CPU" in " ".join(stdout.split())
    summary = json.loads(js.read_text())
    assert summary["policy"] == label and found.evidence() in summary["policy_reason"]
    pinned = quantized_per_kind["avx2"][1]
    assert pinned["policy_reason"].startswith("--cpu-int8 avx2 was given")
