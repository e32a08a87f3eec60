"""report.md: the run as a person reads it on GitHub — status, tables, plots, skips, the recipe.

Plots are matplotlib PNGs under `plots/`, each redrawn only when the numbers it shows changed (a run
that redid nothing also redraws nothing).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgeattn.fileio import atomic_output, write_json, write_text
from edgeattn.pipeline.state import RunState
from edgeattn.reporting import fmt_bytes, fmt_count, fmt_fixed, md_table

STATUS_LINE = {
    "passed": "✅ **passed** — every gate held",
    "gates_failed": "❌ **gates failed** — see the failed gates below (exit code 1)",
    "failed": "💥 **failed** — the run stopped at a step (see below); earlier outputs are kept",
}


def _fmt(value: Any, digits: int = 2, suffix: str = "") -> str:
    """Floats with `digits` decimals, other values as they are, "—" when missing."""
    if value is None or isinstance(value, float):
        return fmt_fixed(value, digits, suffix=suffix)
    return f"{value}{suffix}"


def _numeric(cell: str) -> bool:
    """Whether a cell holds a number as these tables print one (counts, sizes, ratios, "—")."""
    text = str(cell).strip("`").replace("×", "").replace(" MB", "").replace(" kB", "").replace("—", "")
    text = text.rstrip(" kMG")
    try:
        float(text or 0)
    except ValueError:
        return False
    return True


def _table(columns: list[str], rows: list[list[str]]) -> str:
    """A GitHub table; columns whose cells are all numbers are right-aligned, the others left."""
    align = ["right" if rows and all(_numeric(r[i]) for r in rows) else None for i in range(len(columns))]
    return md_table(columns, rows, align)


def _first_latency(art: dict[str, Any], device: str = "local") -> dict[str, Any] | None:
    """The headline latency: the smallest batch, on the first device bench names."""
    rows = sorted(
        art.get("latency") or [], key=lambda r: (r.get("device", "local") != device, r.get("batch") or 0)
    )
    return rows[0] if rows else None


def _where(acc_device: str | None, latency_device: str | None) -> str:
    """The artifacts table's "measured on" cell."""
    names = [d for d in (acc_device, latency_device) if d]
    if len(set(names)) <= 1:
        return names[0] if names else "—"
    return f"accuracy: {acc_device}, latency: {latency_device}"


def _device_sections(manifest: dict[str, Any], primary: str) -> list[str]:
    """Where numbers were measured, and the latency and validation on every device when several."""
    devices = manifest.get("devices") or {}
    if not any(name != "local" for name in devices):
        return []
    md = ["## Devices", "", "Every number above and below names the device it was measured on:", ""]
    md += [f"- `{name}`: {d.get('summary', '')}" for name, d in devices.items()]
    md.append("")
    rows = []
    for a in manifest["artifacts"]:
        for r in sorted(
            a.get("latency") or [],
            key=lambda r: (r.get("device") != primary, r.get("device") or "", r.get("batch") or 0),
        ):
            rows.append([f"`{a['id']}`", str(r.get("device", "local")), str(r.get("runtime", "")), str(r.get("batch")),
                         _fmt(r.get("median_ms")), _fmt(r.get("p90_ms")), _fmt(r.get("speedup"), 2, "×")])  # fmt: skip
    if rows:
        md += ["### Latency by device", ""]
        md += [
            _table(
                ["artifact", "device", "runtime", "batch", "median ms", "p90 ms", "speed vs FP32 ONNX"], rows
            ),
            "",
        ]
    rows = [
        [f"`{a['id']}`", v["device"], str(v.get("runtime") or ""), _fmt(v.get("top1")), _fmt(v.get("top1_drop")),
         _fmt(v.get("agreement")), _fmt(v.get("kl"), 4), "✅" if v.get("passed") else "❌"]
        for a in manifest["artifacts"] for v in a.get("validations") or []
    ]  # fmt: skip
    if rows:
        md += ["### Validation by device", ""]
        md += [
            _table(
                ["artifact", "device", "runtime", "top-1 %", "Δ top-1 pp", "agreement %", "KL", "gates"], rows
            ),
            "",
        ]
    return md


# -------------------------------------------------------------------------------------------- plots
class Plots:
    """Draws each plot only when its data changed since the last run (hash kept in plots/.hashes.json)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.index_path = folder / ".hashes.json"
        try:
            self.index = json.loads(self.index_path.read_text())
        except (OSError, ValueError):
            self.index = {}
        self.changed = False

    def draw(self, name: str, data: Any, render: Callable[[Any, Path], None]) -> Path:
        path = self.folder / name
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        if self.index.get(name) != digest or not path.exists():
            import matplotlib

            matplotlib.use("Agg")
            with atomic_output(path) as tmp:
                render(data, tmp)
            self.index[name] = digest
            self.changed = True
        return path

    def save(self) -> None:
        if self.changed:
            write_json(self.index_path, self.index)


def _accuracy_latency(points: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"fp32": "o", "fp16": "s", "int8": "^"}
    for p in points:
        ax.scatter(p["latency"], p["top1"], marker=markers.get(p["precision"], "D"), s=60)
        ax.annotate(p["id"], (p["latency"], p["top1"]), textcoords="offset points", xytext=(6, 4), fontsize=8)
    refs = sorted({p["reference_top1"] for p in points if p.get("reference_top1") is not None})
    for r in refs:
        ax.axhline(r, color="grey", linestyle="--", linewidth=0.8)
    ax.set_xlabel(f"median latency, batch {points[0]['batch']} (ms) — lower is better")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title("accuracy vs latency per artifact (dashed: FP32 reference)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110, format="png")
    plt.close(fig)


def _layer_drift(series: list[dict[str, Any]], out: Path) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        len(series),
        1,
        figsize=(8, 0.35 * sum(len(s["layers"]) for s in series) + 1.2 * len(series)),
        squeeze=False,
    )
    for ax, s in zip(axes[:, 0], series, strict=True):
        names = [layer["node"][-40:] for layer in s["layers"]][::-1]
        values = [layer["sqnr_db"] for layer in s["layers"]][::-1]
        ax.barh(names, values, color="tab:orange")
        ax.set_title(
            f"{s['id']}: local SQNR of the {len(names)} noisiest layers (dB, higher is better)", fontsize=9
        )
        ax.tick_params(axis="y", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110, format="png")
    plt.close(fig)


# ------------------------------------------------------------------------------------------- report
def _explanation_section(state: RunState) -> list[str]:
    """validate.explain: per export, the images it and its reference disagree on most, with heat maps."""
    md: list[str] = []
    methods: set[str] = set()
    for art in state.artifacts.values():
        ex = (art.validation or {}).get("explanation") or {}
        folder = Path(ex.get("folder") or "")
        if not ex.get("images") or not folder.is_relative_to(state.root):
            continue  # nothing shown, or a cached report of a run folder that has since moved
        methods.add(ex["method"])
        rel = folder.relative_to(state.root)
        rows = [
            [str(r["index"]), r["reference"], r["artifact"], "yes" if r["flipped"] else "", _fmt(r["kl"], 4),
             f"![image {r['index']}]({(rel / Path(r['panel']).name).as_posix()})"]
            for r in ex["images"]
        ]  # fmt: skip
        md += [f"### `{art.id}`", "", *([f"> {ex['note']}", ""] if ex.get("note") else [])]
        md += [
            _table(["image", "reference", "export", "flipped", "KL", "input · reference · export"], rows),
            "",
        ]
    if not md:
        return []
    return [
        "## Where exports disagree with their reference",
        "",
        "The images each export and its FP32 reference disagree on most (flipped class first, then by KL), with "
        f"{', '.join(sorted(methods))} heat maps of the reference and of the checkpoint the export was made from.",
        "",
        *md,
    ]


def write_report(state: RunState, manifest: dict[str, Any], path: Path) -> Path:
    root = state.root
    plots = Plots(root / "plots")
    md: list[str] = [f"# edgeattn run: {manifest['name']}", ""]
    md += [STATUS_LINE[manifest["status"]], ""]
    if manifest.get("failure"):
        md += [f"> {manifest['failure']}", ""]
    r = state.recipe
    md += [
        f"Recipe `{manifest['recipe']['file']}` (sha256 `{manifest['recipe']['sha256'][:12]}`) · model "
        f"`{r.model.name or (state.loaded.checkpoint_config or {}).get('name')}` · data `{r.data.train}` · "
        f"{manifest['created']} · {manifest['seconds']:.1f} s",
        "",
    ]
    if r.description:
        md += [r.description.strip(), ""]

    # --- artifacts
    arts = manifest["artifacts"]
    primary = r.bench.device[0]
    if arts:
        rows = []
        for a in arts:
            acc, drift, gates, lat = (
                a.get("accuracy") or {},
                a.get("drift") or {},
                a.get("gates") or {},
                _first_latency(a, primary),
            )
            verdict = "—" if not gates else ("✅" if gates.get("passed") else "❌")
            rows.append([
                f"`{a['id']}`", a["target"], a["precision"], a["source_checkpoint"], fmt_bytes(a["size_bytes"]),
                _fmt(acc.get("top1")), _fmt(drift.get("top1_drop")), _fmt(drift.get("agreement")), _fmt(drift.get("kl"), 4),
                verdict, _fmt(lat.get("median_ms") if lat else None, 2), _fmt(lat.get("speedup") if lat else None, 2, "×"),
                _where(acc.get("device"), lat.get("device") if lat else None), f"`{a['sha256'][:12]}`",
            ])  # fmt: skip
        md += ["## Artifacts", ""]
        md += [_table(["artifact", "target", "precision", "from", "size", "top-1 %", "Δ top-1 pp", "agreement %", "KL", "gates",
                       "median ms", "speed vs FP32 ONNX", "measured on", "sha256"], rows), ""]  # fmt: skip
        md += ["Δ top-1 and agreement are measured against each artifact's FP32 reference checkpoint on the same images; "
               "latency is the median at the smallest benchmarked batch on the artifact's own runtime, on the device "
               "named in \"measured on\" (`local`: this machine).", ""]  # fmt: skip
        points = []
        for a in arts:
            lat, acc = _first_latency(a, primary), a.get("accuracy") or {}
            if lat and lat.get("median_ms") is not None and acc.get("top1") is not None:
                points.append({"id": a["id"], "precision": a["precision"], "latency": lat["median_ms"], "top1": acc["top1"],
                               "batch": lat.get("batch"), "reference_top1": acc.get("reference_top1")})  # fmt: skip
        if points:
            p = plots.draw("accuracy_vs_latency.png", points, _accuracy_latency)
            md += [f"![accuracy vs latency]({p.relative_to(root)})", ""]
        for bp in state.bench_plots:
            if bp.exists():
                md += [f"![benchmark]({bp.relative_to(root)})", ""]

    md += _device_sections(manifest, primary)

    # --- gates
    failed = manifest["gates"]["failed"]
    if failed:
        md += ["## Failed gates", ""]
        md += [
            f"- `{f['artifact']}`{'' if f.get('device', 'local') == 'local' else ' on ' + f['device']}: {f['gate']} — {f['message']}"
            for f in failed
        ]
        md += [""]

    # --- checkpoints
    if manifest["checkpoints"]:
        md += ["## Checkpoints", ""]
        rows = [
            [f"`{c['name']}`", c["kind"], c["source"] or "—", _fmt((c["accuracy"] or {}).get("top1")), _fmt((c["accuracy"] or {}).get("top5")),
             fmt_count(c["params"]), fmt_count(c["macs"]), f"`{c['path']}`"]
            for c in manifest["checkpoints"]
        ]  # fmt: skip
        md += [
            _table(["checkpoint", "kind", "from", "top-1 %", "top-5 %", "params", "MACs", "file"], rows),
            "",
        ]

    # --- prune
    if manifest.get("prune"):
        p = manifest["prune"]
        heads, params, macs = p.get("heads") or {}, p.get("params") or {}, p.get("macs") or {}
        md += ["## Head pruning", ""]
        md += [f"{p.get('target')} by {p.get('importance')} importance ({p.get('scope')} scope): heads "
               f"{heads.get('before')} → {heads.get('after')}, params {fmt_count(params.get('before'))} → {fmt_count(params.get('after'))}, "
               f"MACs {fmt_count(macs.get('before'))} → {fmt_count(macs.get('after'))}. Details: [{p['report']}]({p['report']}).", ""]  # fmt: skip
        heatmap = state.stage_dir("prune") / "report" / "head_importance.png"
        if heatmap.exists():
            md += [f"![head importance]({heatmap.relative_to(root)})", ""]

    # --- per-layer drift
    series = []
    for art in state.artifacts.values():
        layers = ((art.validation or {}).get("layerwise") or {}).get("layers") or []
        layers = [layer for layer in layers if layer.get("sqnr_db") is not None][:12]
        if layers:
            series.append(
                {
                    "id": art.id,
                    "layers": [{"node": layer["node"], "sqnr_db": layer["sqnr_db"]} for layer in layers],
                }
            )
    if series:
        md += ["## Per-layer drift", ""]
        for art in state.artifacts.values():
            lw = (art.validation or {}).get("layerwise") or {}
            if lw.get("layers"):
                md += [f"- `{art.id}`: output SQNR {_fmt(lw.get('output_sqnr_db'), 1)} dB; noisiest layers "
                       + ", ".join(f"`{layer['node']}`" for layer in lw["layers"][:3])]  # fmt: skip
        p = plots.draw("layer_drift.png", series, _layer_drift)
        md += ["", f"![per-layer drift]({p.relative_to(root)})", ""]

    md += _explanation_section(state)

    # --- skipped
    if manifest["skipped"]:
        md += ["## Skipped here", ""]
        md += [f"- `{s['step']}`: {s['reason']}" for s in manifest["skipped"]]
        md += [""]

    # --- steps
    md += ["## Steps", ""]
    status_mark = {"ran": "ran", "cached": "unchanged (reused)", "skipped": "skipped", "failed": "**failed**"}
    md += [
        _table(
            ["step", "status", "seconds"],
            [
                [f"`{s['id']}`", status_mark.get(s["status"], s["status"]), _fmt(float(s["seconds"]), 1)]
                for s in manifest["steps"]
            ],
        ),
        "",
    ]

    # --- versions and recipe
    md += ["## Versions", ""]
    md += [_table(["package", "version"], [[k, v] for k, v in manifest["versions"].items()]), ""]
    md += ["## Recipe", "", "```yaml", manifest["recipe"]["text"].rstrip(), "```", ""]
    md += ["Machine-readable: [manifest.json](manifest.json) · CI: [junit.xml](junit.xml)", ""]
    plots.save()
    return write_text(path, "\n".join(md))
