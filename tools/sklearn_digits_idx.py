#!/usr/bin/env python3
"""Writes scikit-learn's bundled real handwritten digits (load_digits: 1,797 images of 8×8, 16 grey
levels) as MNIST IDX files, upscaled to 28×28, for checking `infoloss train`'s defaults on real digits.

Split: a fixed shuffle (seed 0) puts 1,437 images in train-*-ubyte and 360 in t10k-*-ubyte, as in the
issue that asked for the check. Needs numpy and scikit-learn (not in CI):

    python3 -m venv /tmp/sk && /tmp/sk/bin/pip install numpy scikit-learn
    /tmp/sk/bin/python tools/sklearn_digits_idx.py /tmp/digits
    infoloss train --data mnist:/tmp/digits --out /tmp/digits-run      # the defaults
"""
import struct
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits


def idx(magic: int, dims: list[int], payload: bytes) -> bytes:
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in dims) + payload


def upscale(img8: np.ndarray) -> np.ndarray:
    """8×8 with values 0..16 to 28×28 uint8: nearest-neighbour ×3 (24×24), centred with a 2-pixel
    border like MNIST's digits in their 28×28 box."""
    big = np.kron(img8, np.ones((3, 3)))
    out = np.zeros((28, 28))
    out[2:26, 2:26] = big
    return np.clip(np.round(out * 255.0 / 16.0), 0, 255).astype(np.uint8)


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "data/digits")
    out.mkdir(parents=True, exist_ok=True)
    d = load_digits()
    order = np.random.default_rng(0).permutation(len(d.target))
    split = {"train": order[:1437], "t10k": order[1437:]}
    for prefix, rows in split.items():
        images = np.stack([upscale(d.images[i]) for i in rows])
        labels = d.target[rows].astype(np.uint8)
        (out / f"{prefix}-images-idx3-ubyte").write_bytes(idx(2051, [len(rows), 28, 28], images.tobytes()))
        (out / f"{prefix}-labels-idx1-ubyte").write_bytes(idx(2049, [len(rows)], labels.tobytes()))
    print(f"{out}: {len(split['train'])} training and {len(split['t10k'])} test digits (28×28 IDX)")


if __name__ == "__main__":
    main()
