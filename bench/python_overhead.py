"""The Python front's overhead: `m(x)` from Python against the same forward timed inside Rust
(`infoloss bench forward`), interleaved in one run. Needs `pip install ./python` (see README, Python)
and a quiet machine; never in CI.

    python bench/python_overhead.py [--batch 32] [--iters 5] [--width 1.0] [--resolution 224]
"""

import argparse
import os
import re
import statistics
import subprocess
import time

import numpy as np

import infoloss as il

p = argparse.ArgumentParser()
p.add_argument("--batch", type=int, default=32)
p.add_argument("--iters", type=int, default=5)
p.add_argument("--width", type=float, default=1.0)
p.add_argument("--resolution", type=int, default=224)
p.add_argument("--rounds", type=int, default=3)
a = p.parse_args()
bin_ = os.environ.get("INFOLOSS_BIN", os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "release", "infoloss"))
m = il.MobileNetV2(width=a.width, resolution=a.resolution, classes=1000, seed=0)
x = np.random.default_rng(0).standard_normal((a.batch, 3, a.resolution, a.resolution), dtype=np.float32)
m(x)  # warm-up
ratios = []
for r in range(a.rounds):
    times = []
    for _ in range(a.iters):
        t0 = time.perf_counter()
        m(x)
        times.append(time.perf_counter() - t0)
    py_ms = 1000 * statistics.median(times)
    out = subprocess.run([bin_, "bench", "forward", "--batch", str(a.batch), "--iters", str(a.iters), "--width", str(a.width), "--resolution", str(a.resolution)], capture_output=True, text=True, check=True).stdout
    rust_ms = float(re.search(r"\(([0-9.]+) ms/batch\)", out).group(1))
    ratios.append(py_ms / rust_ms)
    print(f"round {r + 1}: python {py_ms:.1f} ms, rust {rust_ms:.1f} ms per batch of {a.batch}: python/rust = {py_ms / rust_ms:.3f}")
print(f"median python/rust = {statistics.median(ratios):.3f} (target ≤ 1.05)")
