"""Pictures of explanations: heat maps over their images (matplotlib, Agg), panels and the index grid.

Each panel is one PNG with the tiles side by side, titled with what a reader needs to judge it (class
predicted, true class, similarity); `index.md` shows them as a grid that renders on any Markdown viewer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

COLUMNS = 4  # panels per row of the index grid


@dataclass
class Tile:
    title: str
    image: np.ndarray  # (H, W, 3) in [0, 1]


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float) -> np.ndarray:
    """`image` (3, H, W) in [0, 1] with `heat` (H, W) in [0, 1] blended on top in the jet colour map."""
    from matplotlib import colormaps

    rgb = np.transpose(np.asarray(image, np.float32), (1, 2, 0))
    colored = colormaps["jet"](np.clip(heat, 0, 1))[..., :3].astype(np.float32)
    return np.clip((1 - alpha) * rgb + alpha * colored, 0, 1)


def plain(image: np.ndarray) -> np.ndarray:
    return np.clip(np.transpose(np.asarray(image, np.float32), (1, 2, 0)), 0, 1)


def save_panel(path: Path, tiles: Sequence[Tile], caption: str = "") -> Path:
    """One PNG with `tiles` in a row (wrapping after 8), each titled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cols = min(len(tiles), 8)
    rows = -(-len(tiles) // cols)
    fig, axes = plt.subplots(
        rows, cols, figsize=(2.3 * cols, 2.5 * rows + (0.3 if caption else 0)), squeeze=False
    )
    for ax in axes.ravel():
        ax.axis("off")
    for ax, tile in zip(axes.ravel(), tiles, strict=False):
        ax.imshow(tile.image, interpolation="bilinear")
        ax.set_title(tile.title, fontsize=8)
    if caption:
        fig.suptitle(caption, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def grid_markdown(cells: Sequence[tuple[str, str]]) -> str:
    """A Markdown table of images: `cells` are (png file, caption), COLUMNS per row."""
    if not cells:
        return "_no images_\n"
    cols = min(COLUMNS, len(cells))
    lines = ["| " + " | ".join([" "] * cols) + " |", "|" + "---|" * cols]
    for i in range(0, len(cells), cols):
        row = [f"![{Path(f).stem}]({f})<br>{c}" for f, c in cells[i : i + cols]]
        row += [" "] * (cols - len(row))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"
