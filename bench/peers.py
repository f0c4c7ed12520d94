"""Times the reference peers (PyTorch eager / channels_last, ONNX Runtime) and infoloss on the same
workloads in one run and prints the ratios. Not run in CI.

Setup once:  bash bench/setup_peers.sh            (venv outside the repo, ~/.venvs/infoloss-peers)
Run:         cargo build --release && ~/.venvs/infoloss-peers/bin/python bench/peers.py [--threads 2]
             [--workloads forward32,forward1,analyze] [--iters 5]
The infoloss binary is taken from $INFOLOSS_BIN, else $CARGO_TARGET_DIR/release/infoloss, else
target/release/infoloss.
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision


def median_time(fn, iters):
    fn()  # warm-up
    ts = []
    for _ in range(iters):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def infoloss_bin():
    if os.environ.get("INFOLOSS_BIN"):
        return os.environ["INFOLOSS_BIN"]
    tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(os.path.dirname(__file__), "..", "target"))
    return os.path.join(tdir, "release", "infoloss")


def ours(args, threads):
    out = subprocess.run([infoloss_bin(), "--threads", str(threads)] + args, check=True,
                         capture_output=True, text=True).stdout.strip().splitlines()[-1]
    m = re.search(r"([0-9.]+) img/s", out)
    return float(m.group(1)), out


def torch_model(batch, channels_last=False):
    m = torchvision.models.mobilenet_v2().eval()
    x = torch.randn(batch, 3, 224, 224)
    if channels_last:
        m = m.to(memory_format=torch.channels_last)
        x = x.to(memory_format=torch.channels_last)
    return m, x


def bench_torch(batch, iters, channels_last=False):
    m, x = torch_model(batch, channels_last)
    with torch.inference_mode():
        t = median_time(lambda: m(x), iters)
    return batch / t


def bench_torch_hooks(batch, iters):
    """Forward hooks on the 35 ReLU6 modules counting positive and linear-region channels per position."""
    m, x = torch_model(batch)
    counts = []

    def hook(_mod, _inp, out):
        pos = (out > 0)
        lin = pos & (out < 6)
        counts.append((pos.sum(1).bincount(), lin.sum(1).bincount()))

    for mod in m.modules():
        if isinstance(mod, torch.nn.ReLU6):
            mod.register_forward_hook(hook)
    with torch.inference_mode():
        t = median_time(lambda: (counts.clear(), m(x)), iters)
    return batch / t


def bench_ort(batch, iters, threads):
    import onnxruntime as ort
    m, x = torch_model(batch)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "mnv2.onnx")
        torch.onnx.export(m, x, path, input_names=["x"], output_names=["y"], dynamo=False)
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        feed = {"x": x.numpy()}
        t = median_time(lambda: sess.run(None, feed), iters)
    return batch / t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--workloads", default="forward32,forward1,analyze")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = a.workloads.split(",")
    print(f"# peers: torch {torch.__version__}, threads {a.threads}, binary {infoloss_bin()}")
    for batch in [32, 1]:
        if f"forward{batch}" not in work:
            continue
        o, line = ours(["bench", "forward", "--batch", str(batch), "--iters", str(a.iters)], a.threads)
        pe = bench_torch(batch, a.iters)
        pc = bench_torch(batch, a.iters, channels_last=True)
        ox = bench_ort(batch, a.iters, a.threads)
        print(f"forward batch {batch}: infoloss {o:.1f} img/s | torch eager {pe:.1f} | torch channels_last {pc:.1f} "
              f"| onnxruntime {ox:.1f} img/s")
        print(f"  ratios: infoloss/ort {o / ox:.2f}x, infoloss/torch-eager {o / pe:.2f}x, "
              f"infoloss/torch-channels_last {o / pc:.2f}x")
    if "analyze" in work:
        o, line = ours(["bench", "analyze", "--batch", "32", "--iters", str(a.iters)], a.threads)
        ph = bench_torch_hooks(32, a.iters)
        print(f"analyze batch 32 (forward + active-channel counts at 35 ReLU6 outputs): infoloss {o:.1f} img/s "
              f"| torch hooks {ph:.1f} img/s | ratio {o / ph:.2f}x   [{line}]")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
