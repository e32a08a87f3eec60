"""The three renderings of a validation report: JSON (machines), Markdown (`$GITHUB_STEP_SUMMARY`, merge
request comments) and JUnit XML (one test case per gate, which GitHub Actions and GitLab display as
tests). The table rows are built once here and shared with the terminal output.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from edgeattn.fileio import write_json, write_text

MAX_LISTED_LAYERS = 10


def _f(v: float | None, digits: int = 2) -> str:
    if v is None:
        return "exact"
    if v != 0 and abs(v) < 10 ** (-digits):
        return f"{v:.2e}"
    return f"{v:.{digits}f}"


def _signed(v: float, digits: int = 2) -> str:
    """'+1.23' / '-0.45', and '+0.00' rather than '-0.00'."""
    text = f"{v:+.{digits}f}"
    return "+" + text[1:] if float(text) == 0 else text


def metric_rows(report: Any) -> list[list[str]]:
    """[metric, reference, artifact, difference] rows."""
    m = report.metrics
    return [
        ["top-1 %", _f(m.reference_top1), _f(m.artifact_top1), f"{_signed(-m.top1_drop)} pp"],
        ["top-5 %", _f(m.reference_top5), _f(m.artifact_top5), f"{_signed(-m.top5_drop)} pp"],
        ["top-1 agreement %", "", _f(m.agreement), ""],
        ["KL(ref ‖ artifact) nats", "", _f(m.kl, 4), ""],
        ["max |Δ logit|", "", _f(m.max_abs_logit_error, 4), ""],
        ["mean |Δ logit|", "", _f(m.mean_abs_logit_error, 4), ""],
        ["cosine (mean / min)", "", f"{m.cosine:.5f} / {m.min_cosine:.5f}", ""],
    ]


def interval_line(report: Any) -> str:
    m, ci = report.metrics, report.metrics.drop_interval
    return (
        f"top-1 drop {_signed(m.top1_drop)} pp, {ci.confidence:.0%} CI [{_signed(ci.low)}, {_signed(ci.high)}] pp (paired bootstrap); "
        f"decided by {ci.discordant} of {m.n} images ({ci.ref_only_correct} only the reference got right, "
        f"{ci.art_only_correct} only the artifact); McNemar p = {ci.mcnemar_p:.3g}"
    )


def _gate_value(v: float, unit: str) -> str:
    return f"{v:.2f}" if unit in ("pp", "%") else f"{v:.4g}"


def gate_rows(report: Any) -> list[list[str]]:
    rows = []
    for g in report.gates:
        unit = f" {g.unit}" if g.unit else ""
        op = "≤" if g.bound == "max" else "≥"
        rows.append(
            [
                g.name,
                _gate_value(g.measured, g.unit) + unit,
                f"{op} {_gate_value(g.allowed, g.unit)}{unit}",
                "pass" if g.passed else "FAIL",
            ]
        )
    return rows


def worse_class_rows(report: Any, n: int = 10) -> list[list[str]]:
    return [
        [c.name, str(c.n), _f(c.reference_top1), _f(c.artifact_top1), f"{c.delta:+.2f}"]
        for c in report.metrics.worse_classes[:n]
    ]


def layer_rows(layerwise: Any, n: int = MAX_LISTED_LAYERS) -> list[list[str]]:
    rows = []
    for layer in layerwise.layers[:n]:
        gain = "" if layer.kept_fp32_output_gain_db is None else f"{layer.kept_fp32_output_gain_db:+.2f}"
        rows.append(
            [
                layer.node,
                layer.op_type,
                layer.module or "",
                _f(layer.sqnr_db, 1),
                _f(layer.rel_error, 4),
                _f(layer.cumulative_sqnr_db, 1),
                gain,
            ]
        )
    return rows


LAYER_COLUMNS = [
    "node",
    "op",
    "module",
    "SQNR dB",
    "rel. error",
    "cumulative SQNR dB",
    "output gain dB if FP32",
]
CONSOLE_LAYER_COLUMNS = ["node", "op", "SQNR dB", "cum. SQNR dB", "gain dB if FP32"]


def console_layer_rows(layerwise: Any, n: int = MAX_LISTED_LAYERS) -> list[list[str]]:
    return [[r[0], r[1], r[3], r[5], r[6]] for r in layer_rows(layerwise, n)]


# --------------------------------------------------------------------------------------- Markdown
def _md_table(columns: list[str], rows: list[list[str]]) -> str:
    esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def to_markdown(report: Any) -> str:
    verdict = "✅ passed" if report.passed else f"❌ failed ({', '.join(g.name for g in report.failed)})"
    a, r = report.artifact_info, report.reference_info
    parts = [
        f"### edgeattn validate — {Path(report.artifact).name}: {verdict}",
        "",
        f"Artifact `{report.artifact}` on **{a.get('runtime', '?')}** ({a.get('precision', '?')}) vs reference "
        f"`{report.reference}` on {r.get('runtime', '?')}; data `{report.data}` [{report.split}], {report.metrics.n} images.",
        "",
        _md_table(["gate", "measured", "allowed", "result"], gate_rows(report)),
        "",
        _md_table(["metric", "reference", "artifact", "Δ"], metric_rows(report)),
        "",
        interval_line(report) + ".",
    ]
    worse = worse_class_rows(report)
    if worse:
        parts += [
            "",
            "Classes that got worse:",
            "",
            _md_table(["class", "images", "reference top-1 %", "artifact top-1 %", "Δ pp"], worse),
        ]
    if report.warnings:
        parts += ["", *[f"> ⚠️ {w}" for w in report.warnings]]
    if report.layerwise is not None:
        lw = report.layerwise
        parts += [
            "",
            f"#### Where the drift comes from ({lw.samples} inputs; output SQNR {_f(lw.output_sqnr_db, 1)} dB; worst first)",
            "",
            _md_table(LAYER_COLUMNS, layer_rows(lw)),
            "",
            "To keep the worst layers in float, re-quantize with `edgeattn quantize ... --ignored MODULE` (the module "
            "column), or try it on this ONNX with `edgeattn.validate.layerwise.keep_fp32`, and validate again.",
            *[f"> {note}" for note in lw.notes],
        ]
    return "\n".join(parts) + "\n"


# ------------------------------------------------------------------------------------------ JUnit
def to_junit(report: Any, suite: str = "edgeattn.validate") -> str:
    """JUnit XML: one <testcase> per gate; a failed gate is a <failure> with measured vs allowed."""
    name = Path(report.artifact).name.replace(".", "_")  # dots would read as package levels
    failures = len(report.failed)
    root = ET.Element(
        "testsuites",
        name=suite,
        tests=str(len(report.gates)),
        failures=str(failures),
        errors="0",
        time=f"{report.seconds:.3f}",
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=f"{suite}.{name}",
        tests=str(len(report.gates)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{report.seconds:.3f}",
    )
    props = ET.SubElement(ts, "properties")
    m = report.metrics
    for key, value in (
        ("artifact", report.artifact),
        ("reference", report.reference),
        ("data", f"{report.data} [{report.split}]"),
        ("runtime", report.artifact_info.get("runtime", "")),
        ("images", m.n),
        ("reference_top1", f"{m.reference_top1:.2f}"),
        ("artifact_top1", f"{m.artifact_top1:.2f}"),
        ("agreement", f"{m.agreement:.2f}"),
        ("kl", f"{m.kl:.6f}"),
    ):
        ET.SubElement(props, "property", name=key, value=str(value))
    for g in report.gates:
        case = ET.SubElement(ts, "testcase", classname=f"{suite}.{name}", name=g.name, time="0")
        if not g.passed:
            failure = ET.SubElement(case, "failure", message=g.message, type="GateFailure")
            failure.text = f"{g.message}\n{interval_line(report)}\nartifact: {report.artifact}\nreference: {report.reference}"
    out = ET.SubElement(ts, "system-out")
    out.text = interval_line(report) + ("\n" + "\n".join(report.warnings) if report.warnings else "")
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_reports(
    report: Any, *, json_out: Path | None = None, markdown: Path | None = None, junit: Path | None = None
) -> None:
    """Write whichever reports were asked for, each atomically."""
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if markdown is not None:
        write_text(markdown, to_markdown(report))
    if junit is not None:
        write_text(junit, to_junit(report))
