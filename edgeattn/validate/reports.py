"""The three renderings of a validation report: JSON (machines), Markdown (`$GITHUB_STEP_SUMMARY`, merge
request comments) and JUnit XML (one test case per gate, which GitHub Actions and GitLab display as
tests). The table rows are built once here and shared with the terminal output.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from edgeattn.fileio import write_json, write_text
from edgeattn.reporting import JUnitCase, JUnitSuite, junit_xml, md_table

if TYPE_CHECKING:
    from edgeattn.validate.core import ValidationReport
    from edgeattn.validate.layerwise import LayerwiseReport

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


def metric_rows(report: ValidationReport) -> list[list[str]]:
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


def interval_line(report: ValidationReport) -> str:
    m, ci = report.metrics, report.metrics.drop_interval
    return (
        f"top-1 drop {_signed(m.top1_drop)} pp, {ci.confidence:.0%} CI [{_signed(ci.low)}, {_signed(ci.high)}] pp (paired bootstrap); "
        f"decided by {ci.discordant} of {m.n} images ({ci.ref_only_correct} only the reference got right, "
        f"{ci.art_only_correct} only the artifact); McNemar p = {ci.mcnemar_p:.3g}"
    )


def _gate_value(v: float, unit: str) -> str:
    return f"{v:.2f}" if unit in ("pp", "%") else f"{v:.4g}"


def gate_rows(report: ValidationReport) -> list[list[str]]:
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


def worse_class_rows(report: ValidationReport, n: int = 10) -> list[list[str]]:
    return [
        [c.name, str(c.n), _f(c.reference_top1), _f(c.artifact_top1), f"{c.delta:+.2f}"]
        for c in report.metrics.worse_classes[:n]
    ]


def layer_rows(layerwise: LayerwiseReport, n: int = MAX_LISTED_LAYERS) -> list[list[str]]:
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


def console_layer_rows(layerwise: LayerwiseReport, n: int = MAX_LISTED_LAYERS) -> list[list[str]]:
    return [[r[0], r[1], r[3], r[5], r[6]] for r in layer_rows(layerwise, n)]


# --------------------------------------------------------------------------------------- Markdown
def to_markdown(report: ValidationReport) -> str:
    verdict = "✅ passed" if report.passed else f"❌ failed ({', '.join(g.name for g in report.failed)})"
    a, r = report.artifact_info, report.reference_info
    parts = [
        f"### edgeattn validate — {Path(report.artifact).name}: {verdict}",
        "",
        f"Artifact `{report.artifact}` on **{a.get('runtime', '?')}** ({a.get('precision', '?')}) vs reference "
        f"`{report.reference}` on {r.get('runtime', '?')}; data `{report.data}` [{report.split}], {report.metrics.n} images.",
        "",
        f"Artifact measured on: {report.measured_on}.",
        "",
        md_table(["gate", "measured", "allowed", "result"], gate_rows(report)),
        "",
        md_table(["metric", "reference", "artifact", "Δ"], metric_rows(report)),
        "",
        interval_line(report) + ".",
    ]
    worse = worse_class_rows(report)
    if worse:
        parts += [
            "",
            "Classes that got worse:",
            "",
            md_table(["class", "images", "reference top-1 %", "artifact top-1 %", "Δ pp"], worse),
        ]
    if report.warnings:
        parts += ["", *[f"> ⚠️ {w}" for w in report.warnings]]
    if report.layerwise is not None:
        lw = report.layerwise
        parts += [
            "",
            f"#### Where the drift comes from ({lw.samples} inputs; output SQNR {_f(lw.output_sqnr_db, 1)} dB; worst first)",
            "",
            md_table(LAYER_COLUMNS, layer_rows(lw)),
            "",
            "To keep the worst layers in float, re-quantize with `edgeattn quantize ... --ignored MODULE` (the module "
            "column), or try it on this ONNX with `edgeattn.onnx.float_twin.keep_fp32`, and validate again.",
            *[f"> {note}" for note in lw.notes],
        ]
    if report.explanation is not None:
        parts += ["", *explanation_lines(report.explanation)]
    return "\n".join(parts) + "\n"


def explanation_lines(ex: dict) -> list[str]:
    """`--explain`: one row per image (flipped first, then by KL) with its heat-map panel."""
    lines = [
        f"#### Where they disagree most ({ex['method']}: input | reference | artifact's source checkpoint)",
        "",
    ]
    if ex.get("note"):
        lines += [f"> {ex['note']}", ""]
    rows = [
        [str(r["index"]), r["reference"], r["artifact"], "yes" if r["flipped"] else "", _f(r["kl"], 4),
         f"![image {r['index']}]({r['panel']})"]
        for r in ex["images"]
    ]  # fmt: skip
    return [*lines, md_table(["image", "reference", "artifact", "flipped", "KL", "heat maps"], rows)]


# ------------------------------------------------------------------------------------------ JUnit
def to_junit(report: ValidationReport, suite: str = "edgeattn.validate") -> str:
    """JUnit XML: one <testcase> per gate; a failed gate is a <failure> with measured vs allowed."""
    name = f"{suite}.{Path(report.artifact).name.replace('.', '_')}"  # dots would read as package levels
    m, interval = report.metrics, interval_line(report)
    details = f"{interval}\nartifact: {report.artifact}\nreference: {report.reference}"
    cases = [
        JUnitCase(g.name, name)
        if g.passed
        else JUnitCase(g.name, name, g.message, f"{g.message}\n{details}", failure_type="GateFailure")
        for g in report.gates
    ]
    properties = {
        "artifact": report.artifact,
        "reference": report.reference,
        "data": f"{report.data} [{report.split}]",
        "runtime": report.artifact_info.get("runtime", ""),
        "device": report.measured_on,
        "images": m.n,
        "reference_top1": f"{m.reference_top1:.2f}",
        "artifact_top1": f"{m.artifact_top1:.2f}",
        "agreement": f"{m.agreement:.2f}",
        "kl": f"{m.kl:.6f}",
    }
    system_out = interval + ("\n" + "\n".join(report.warnings) if report.warnings else "")
    return junit_xml([JUnitSuite(name, cases, properties, system_out, report.seconds)], suite)


def write_reports(
    report: ValidationReport,
    *,
    json_out: Path | None = None,
    markdown: Path | None = None,
    junit: Path | None = None,
) -> None:
    """Write whichever reports were asked for, each atomically."""
    if json_out is not None:
        write_json(json_out, report.to_dict())
    if markdown is not None:
        write_text(markdown, to_markdown(report))
    if junit is not None:
        write_text(junit, to_junit(report))
