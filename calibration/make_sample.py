"""Regenerates calibration/digits_calib_sample.npz: 100 calibration-split images at 32x32."""

from pathlib import Path

import numpy as np

from edgeattn.data import load_split


def main() -> None:
    data = load_split("builtin:digits", "calib", 32).subset(100)
    out = Path(__file__).with_name("digits_calib_sample.npz")
    np.savez_compressed(
        out, images=data.images.numpy(), labels=data.labels.numpy(), classes=np.array(data.classes)
    )
    print(f"wrote {out} ({len(data)} images)")


if __name__ == "__main__":
    main()
