"""Drift metrics, gates and report renderings on logits whose answers are known by construction."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from edgeattn.errors import InputError
from edgeattn.validate.core import ValidationReport
from edgeattn.validate.gates import Gates, check_gates
from edgeattn.validate.metrics import drift_metrics, mcnemar_exact, mean_kl, paired_drop_interval
from edgeattn.validate.reports import to_junit, to_markdown


def _logits(labels: np.ndarray, classes: int, rng: np.random.Generator, margin: float = 4.0) -> np.ndarray:
    x = rng.standard_normal((len(labels), classes)).astype(np.float32)
    x[np.arange(len(labels)), labels] += margin
    return x


def test_identical_logits_have_no_drift():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    ref = _logits(labels, 10, rng)
    m = drift_metrics(ref, ref.copy(), labels)
    assert m.top1_drop == 0 and m.agreement == 100 and m.kl == pytest.approx(0, abs=1e-12)
    assert m.max_abs_logit_error == 0 and m.cosine == pytest.approx(1.0)
    assert m.drop_interval.discordant == 0 and (m.drop_interval.low, m.drop_interval.high) == (0.0, 0.0)
    assert m.worse_classes == []


def test_known_drop_agreement_and_worse_class():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(4), 50)  # 200 images, 50 per class
    ref = _logits(labels, 4, rng, margin=20.0)  # the reference is always right
    art = ref.copy()
    broken = np.where(labels == 2)[0][:10]  # the artifact gets 10 images of class 2 wrong
    art[broken, 2] -= 40.0
    m = drift_metrics(ref, art, labels, ["a", "b", "c", "d"])
    assert m.reference_top1 == 100.0 and m.artifact_top1 == 95.0
    assert m.top1_drop == pytest.approx(5.0) and m.agreement == pytest.approx(95.0)
    ci = m.drop_interval
    assert (ci.ref_only_correct, ci.art_only_correct, ci.discordant) == (10, 0, 10)
    assert ci.low > 0 and ci.low <= 5.0 <= ci.high  # ten discordant images: clearly a real drop
    assert [c.name for c in m.worse_classes] == ["c"] and m.worse_classes[0].delta == pytest.approx(-20.0)
    assert m.max_abs_logit_error == pytest.approx(40.0)


def test_kl_matches_torch_and_cosine_detects_scale_free_changes():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((64, 7)).astype(np.float32)
    b = a + 0.3 * rng.standard_normal((64, 7)).astype(np.float32)
    expected = F.kl_div(
        F.log_softmax(torch.from_numpy(b), -1),
        F.log_softmax(torch.from_numpy(a), -1),
        reduction="batchmean",
        log_target=True,
    )
    assert mean_kl(a, b) == pytest.approx(float(expected), rel=1e-5)
    m = drift_metrics(a, 2 * a, rng.integers(0, 7, 64))
    assert m.cosine == pytest.approx(1.0) and m.agreement == 100.0 and m.kl > 0


def test_mcnemar_and_bootstrap_interval():
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 / 1024)
    assert mcnemar_exact(5, 5) == 1.0
    ref = np.ones(1000, bool)
    art = ref.copy()
    art[:6] = False  # 6 losses ...
    ref[6:10] = False  # ... and 4 gains: +0.2 pp, not significant
    ci = paired_drop_interval(ref, art, seed=0)
    assert ci.low < 0.2 < ci.high and ci.low < 0 < ci.high
    assert ci.mcnemar_p > 0.5
    assert paired_drop_interval(ref, art, seed=0) == ci  # deterministic


def test_gates_pass_fail_messages_and_recipe_validation():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 300)
    ref = _logits(labels, 10, rng)
    art = ref + 0.05 * rng.standard_normal(ref.shape).astype(np.float32)
    m = drift_metrics(ref, art, labels)
    assert all(g.passed for g in check_gates(m, Gates()))
    worse = ref.copy()
    worse[:90] = np.roll(worse[:90], 1, axis=1)  # 30 % of the answers change
    results = {g.name: g for g in check_gates(drift_metrics(ref, worse, labels), Gates(max_top1_drop=0.0))}
    assert not results["max_top1_drop"].passed and not results["min_agreement"].passed
    assert (
        results["max_top1_drop"].message.startswith("max_top1_drop: top-1 drop")
        and "> allowed 0.00 pp" in results["max_top1_drop"].message
    )
    assert Gates.from_dict({"max_kl": "0.5", "min_agreement": None}) == Gates(max_kl=0.5, min_agreement=None)
    assert "min_agreement" not in Gates(min_agreement=None).active()
    with pytest.raises(InputError, match="unknown gate"):
        Gates.from_dict({"max_top1_dorp": 1})
    with pytest.raises(InputError, match=r"outside \[0, 100\]"):
        Gates.build(min_agreement=150)
    with pytest.raises(InputError, match="finite"):
        Gates.build(max_kl=math.nan)


def _report(passed: bool) -> ValidationReport:
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 10, 100)
    ref = _logits(labels, 10, rng)
    art = ref.copy()
    if not passed:
        art[:5] = np.roll(art[:5], 1, axis=1)
    m = drift_metrics(ref, art, labels)
    return ValidationReport(
        artifact="/x/m_int8.onnx", reference="/x/m.pt", data="builtin:digits", split="val",
        artifact_info={"runtime": "onnxruntime", "precision": "int8"}, reference_info={"runtime": "torch"},
        metrics=m, gates=check_gates(m, Gates(max_top1_drop=0.0)), warnings=["a <warning> & more"],
    )  # fmt: skip


def test_junit_one_testcase_per_gate_with_failure_details():
    report = _report(passed=False)
    root = ET.fromstring(to_junit(report))
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["max_top1_drop", "min_agreement", "max_kl"]
    failed = {c.get("name"): c.find("failure") for c in cases if c.find("failure") is not None}
    assert "max_top1_drop" in failed
    msg = failed["max_top1_drop"].get("message")
    assert "top-1 drop 5.00 pp" in msg and "allowed 0.00 pp" in msg
    assert root.get("failures") == str(len(failed)) and root.find("testsuite").get("tests") == "3"
    ok = ET.fromstring(to_junit(_report(passed=True)))
    assert ok.find(".//failure") is None and ok.get("failures") == "0"


def test_markdown_and_json_carry_verdict_gates_and_interval():
    report = _report(passed=False)
    md = to_markdown(report)
    assert (
        "❌ failed (max_top1_drop" in md and "| max_top1_drop |" in md and "decided by 5 of 100 images" in md
    )
    assert "Classes that got worse" in md
    d = json.loads(json.dumps(report.to_dict()))
    assert d["passed"] is False and d["metrics"]["drop_interval"]["discordant"] == 5
    assert {g["name"] for g in d["gates"] if not g["passed"]} >= {"max_top1_drop"}
