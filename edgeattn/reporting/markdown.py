"""GitHub Markdown tables written once: one escaping rule and one alignment row for every report."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Literal

Align = Literal["left", "right", "center"] | None

_ALIGN_ROW = {None: "---", "left": ":---", "right": "---:", "center": ":---:"}


def md_cell(value: object) -> str:
    """`value` as table-cell text: a `|` would end the cell, so it is escaped (also inside `code`)."""
    return str(value).replace("|", "\\|")


def md_table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], align: Sequence[Align] | None = None
) -> str:
    """A table without a trailing newline; `align` per column (None: the renderer's default, left)."""
    marks = [_ALIGN_ROW[a] for a in align] if align is not None else ["---"] * len(columns)
    if len(marks) != len(columns):
        raise ValueError(f"{len(marks)} alignments for {len(columns)} columns")
    lines = ["| " + " | ".join(md_cell(c) for c in columns) + " |", "|" + "|".join(marks) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
