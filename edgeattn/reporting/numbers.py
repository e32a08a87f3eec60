"""Number formatting written once, so a count or a size reads the same in every table and report."""

from __future__ import annotations

MISSING = "—"  # what a missing value prints as, unless the caller says otherwise


def fmt_count(n: float | None, missing: str = MISSING) -> str:
    """Parameters, MACs and the like: 1234567 -> "1.23 M" (G, M, k; below 1000 as a whole number)."""
    if n is None:
        return missing
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f} {unit}"
    return f"{n:.0f}"


def fmt_fixed(value: float | None, digits: int = 2, missing: str = MISSING, suffix: str = "") -> str:
    """`value` with `digits` decimals and `suffix`, or `missing` when there is no value."""
    return missing if value is None else f"{value:.{digits}f}{suffix}"


def fmt_bytes(n: int) -> str:
    """A file size: "1.23 MB" from 100 kB up, "12.3 kB" below (decimal units)."""
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"
