"""Peak memory of `edgeattn eval` on a folder of real-size JPEG photos stays flat as the folder grows.

Slow (it writes thousands of JPEGs). Also a benchmark script: `python3 tests/test_data_memory.py 300 3000`
prints peak RSS (main process and main + loader workers) and the images/s `eval --json` reports.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]  # run as a script from anywhere


def write_jpegs(root: Path, n: int) -> Path:
    """n JPEGs of about 600x400 (shifted crops of scikit-learn's two sample photos), two classes."""
    from helpers.photos import sample_photos
    from PIL import Image

    photos = sample_photos()
    for c in ("china", "flower"):
        (root / c).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        dx, dy = (i * 7) % 40, (i * 3) % 27
        img = photos[i % 2][dy : dy + 400, dx : dx + 600]
        Image.fromarray(np.ascontiguousarray(img)).save(
            root / ("china", "flower")[i % 2] / f"{i:06d}.jpg", quality=90
        )
    return root


def tiny_checkpoint(path: Path) -> Path:
    import torch
    from helpers.models import tiny_config

    from edgeattn.checkpoint import ModelHandle, save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(ModelHandle.new(tiny_config("attn_vgg11_linear", num_classes=2)), path)


def peak_rss_of_eval(ckpt: Path, data: Path, workers: int, out: Path) -> dict:
    """Run `python -m edgeattn eval` and sample the RSS of it and its loader workers every 20 ms."""
    import psutil

    cmd = [sys.executable, "-m", "edgeattn", "eval", str(ckpt), "--data", f"{data}@all"]
    cmd += ["--workers", str(workers), "--json", str(out)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ps, main_peak, total_peak = psutil.Process(proc.pid), 0, 0
    start = time.perf_counter()
    while proc.poll() is None:
        try:
            main = ps.memory_info().rss
            kids = sum(k.memory_info().rss for k in ps.children(recursive=True))
        except psutil.Error:
            break
        main_peak, total_peak = max(main_peak, main), max(total_peak, main + kids)
        time.sleep(0.02)
    _, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    report = json.loads(out.read_text())
    return {
        "images": report["n"],
        "main_peak_mb": round(main_peak / 2**20),
        "with_workers_peak_mb": round(total_peak / 2**20),
        "seconds": round(time.perf_counter() - start, 1),
        "load_images_per_s": round(report["load_images_per_s"] or 0, 1),
        "model_images_per_s": round(report["model_images_per_s"] or 0, 1),
    }


def measure(sizes: list[int], root: Path, workers: int = 2) -> list[dict]:
    ckpt = tiny_checkpoint(root / "tiny.pt")
    rows = []
    for n in sizes:
        data = write_jpegs(root / f"jpegs{n}", n)
        rows.append(peak_rss_of_eval(ckpt, data, workers, root / f"eval{n}.json"))
    return rows


@pytest.mark.slow
def test_eval_memory_is_flat_from_hundreds_to_thousands_of_jpegs(tmp_path):
    small, large = measure([300, 3000], tmp_path)
    print(f"\npeak RSS: {small} vs {large}")
    assert large["images"] == 3000 and small["images"] == 300
    # 2,700 more decoded 600x400 photos held in memory would be ~1.9 GB; streaming keeps it flat.
    assert large["with_workers_peak_mb"] < small["with_workers_peak_mb"] + 150, (small, large)
    assert large["main_peak_mb"] < small["main_peak_mb"] + 100, (small, large)


if __name__ == "__main__":
    import tempfile

    counts = [int(a) for a in sys.argv[1:]] or [300, 3000]
    with tempfile.TemporaryDirectory(prefix="edgeattn-mem-") as tmp:
        for row in measure(counts, Path(tmp)):
            print(json.dumps(row))
