"""The benchmark's result types and their renderings: a rich table, JSON and Markdown.

Every row is one artifact at one batch size; `speedup` is the baseline's median latency divided by the
row's (same batch size, same run): above 1 the row is faster than the baseline, below 1 slower.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from edgeattn.reporting import fmt_count, fmt_fixed, md_table

FORMAT = "edgeattn.bench"


@dataclass
class BenchRow:
    artifact: str
    label: str
    runtime: str  # e.g. "onnxruntime 1.32.0 (CPUExecutionProvider)"
    runtime_kind: str  # registry key: torch | onnxruntime | tensorrt | coreml
    precision: str
    batch: int
    median_ms: float
    mean_ms: float
    p90_ms: float
    p99_ms: float
    min_ms: float
    max_ms: float
    std_ms: float
    throughput_ips: float
    iterations: int
    first_run_ms: float
    load_ms: float
    peak_rss_mb: float | None = None
    load_rss_mb: float | None = None
    macs: int | None = None
    top1: float | None = None
    accuracy_note: str = ""
    speedup: float | None = None  # baseline median / this median (same batch)
    latency_ratio: float | None = None  # this median / baseline median
    is_baseline: bool = False
    timer: str = ""
    pinned_cpus: list[int] | None = None
    format: str = ""
    sha256: str = ""
    source_kind: str = ""
    history: list[str] = field(default_factory=list)
    device: str = "local"  # where it was measured: local, or the device's name (ssh://user@host)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Skipped:
    artifact: str
    label: str
    runtime: str
    reason: str
    batch: int | None = None  # None: the whole artifact

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BenchReport:
    env: dict[str, Any]
    settings: dict[str, Any]
    rows: list[BenchRow] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    baseline: str | None = None  # label of the baseline artifact
    notes: list[str] = field(default_factory=list)
    title: str = "edgeattn bench"
    device: dict[str, Any] | None = None  # on a device: what `edgeattn device check` reports

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT,
            "title": self.title,
            "baseline": self.baseline,
            "env": self.env,
            "settings": self.settings,
            "rows": [r.to_dict() for r in self.rows],
            "skipped": [s.to_dict() for s in self.skipped],
            "notes": list(self.notes),
        }
        if self.device is not None:
            data["device"] = self.device
        return data

    @property
    def measured_on(self) -> str:
        """Where the numbers were measured, as one line."""
        from edgeattn.device.facts import summary

        return summary(self.device) if self.device is not None else "local (this machine)"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BenchReport:
        return cls(
            env=data.get("env", {}),
            settings=data.get("settings", {}),
            rows=[BenchRow(**r) for r in data.get("rows", [])],
            skipped=[Skipped(**s) for s in data.get("skipped", [])],
            baseline=data.get("baseline"),
            notes=list(data.get("notes", [])),
            title=data.get("title", "edgeattn bench"),
            device=data.get("device"),
        )

    def table_rows(self) -> list[list[str]]:
        return [row_cells(r) for r in self.rows]


TABLE_COLUMNS = [
    "artifact",
    "runtime",
    "prec.",
    "batch",
    "median ms",
    "p90 ms",
    "p99 ms",
    "mean±std ms",
    "min ms",
    "img/s",
    "speed vs base",
    "load ms",
    "peak RSS MB",
    "MACs",
    "top-1 %",
]


def _f(value: float | None, digits: int = 2) -> str:
    return fmt_fixed(value, digits, missing="–")


def row_cells(r: BenchRow) -> list[str]:
    speed = "baseline" if r.is_baseline else ("–" if r.speedup is None else f"{r.speedup:.2f}×")
    return [
        r.label,
        short_runtime(r.runtime),
        r.precision,
        str(r.batch),
        _f(r.median_ms),
        _f(r.p90_ms),
        _f(r.p99_ms),
        f"{r.mean_ms:.2f}±{r.std_ms:.2f}",
        _f(r.min_ms),
        _f(r.throughput_ips, 1),
        speed,
        _f(r.load_ms, 0),
        _f(r.peak_rss_mb, 0),
        fmt_count(r.macs, missing="–"),
        _f(r.top1),
    ]


def short_runtime(runtime: str) -> str:
    """ "onnxruntime 1.32.0 (CPUExecutionProvider)" -> "onnxruntime CPU": versions are in the environment line."""
    import re

    short = re.sub(r" \d+\.\d+[^ ]*", "", runtime)  # drop version numbers
    short = short.replace("ExecutionProvider", "").replace("(", "").replace(")", "")
    return re.sub(r" (fp32|int8|fp16)$", "", short).strip()


def env_line(env: dict[str, Any]) -> str:
    cpu = env.get("cpu", {})
    versions = env.get("versions", {})
    runtimes = ", ".join(
        f"{k} {versions[k]}" for k in ("onnxruntime", "torch", "tensorrt", "coremltools") if k in versions
    )
    flags = " ".join(cpu.get("simd_flags", [])) or "?"
    int8 = "yes" if cpu.get("int8_dot_product") else "no"
    return (
        f"{cpu.get('model', '?')} ({cpu.get('arch', '?')}, {cpu.get('usable_cores', '?')} usable / {cpu.get('logical_cores', '?')} logical cores; "
        f"SIMD: {flags}; int8 dot-product: {int8}), {env.get('threads')} threads{' pinned' if env.get('pinned') else ''}; "
        f"{runtimes}; {env.get('os', '')}"
    )


def render_rich(report: BenchReport, console: Any = None) -> None:
    """Print the comparison table, the skipped artifacts with reasons, and the environment."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = console or Console(highlight=False)
    if not console.is_terminal and console.width < 200:  # logs and pipes: keep every column readable
        console = Console(highlight=False, width=220, file=console.file)
    table = Table(title=f"{report.title} — baseline: {report.baseline or 'none'}", title_justify="left")
    for c in TABLE_COLUMNS:
        table.add_column(c, justify="left" if c in ("artifact", "runtime", "prec.") else "right")
    for r in report.rows:
        cells = row_cells(r)
        if r.speedup is not None and not r.is_baseline:
            colour = "green" if r.speedup >= 1.0 else "red"
            cells[10] = f"[{colour}]{cells[10]}[/]"
        table.add_row(*cells)
    console.print(table)
    for s in report.skipped:
        where = f" (batch {s.batch})" if s.batch is not None else ""
        console.print(f"[yellow]skipped[/] {s.label}{where} on {s.runtime}: {s.reason}", soft_wrap=True)
    for note in report.notes:
        console.print(f"note: {note}", soft_wrap=True)
    console.print(f"measured on: {escape(report.measured_on)}", soft_wrap=True)
    console.print(f"[dim]environment: {escape(env_line(report.env))}[/]", soft_wrap=True)


MARKDOWN_COLUMNS = [
    "artifact",
    "runtime",
    "precision",
    "batch",
    "median ms",
    "p90 ms",
    "p99 ms",
    "img/s",
    "speed vs baseline",
    "peak RSS MB",
    "MACs",
    "top-1 %",
]


def markdown_row(r: BenchRow) -> list[str]:
    c = row_cells(r)
    return [
        c[0],
        c[1],
        c[2],
        c[3],
        c[4],
        c[5],
        c[6],
        c[9],
        "baseline" if r.is_baseline else c[10],
        c[12],
        c[13],
        c[14],
    ]


def to_markdown(report: BenchReport, heading_level: int = 3) -> str:
    """One report as Markdown: the table, skipped entries with reasons, notes."""
    parts = [
        f"{'#' * heading_level} {report.title}",
        "",
        f"Measured on: {report.measured_on}. Baseline: {report.baseline or 'none'}.",
        "",
    ]
    parts.append(md_table(MARKDOWN_COLUMNS, [markdown_row(r) for r in report.rows]))
    if report.skipped:
        parts.append("")
        parts += [
            f"- skipped: {s.label}{f' (batch {s.batch})' if s.batch is not None else ''} on {s.runtime}: {s.reason}"
            for s in report.skipped
        ]
    if report.notes:
        parts.append("")
        parts += [f"- {n}" for n in report.notes]
    return "\n".join(parts) + "\n"
