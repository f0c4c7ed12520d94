"""Times the reference peers (PyTorch eager / channels_last, ONNX Runtime) and infoloss on the same
workloads in one run and prints the ratios. Not run in CI.

Setup once:  bash bench/setup_peers.sh            (venv outside the repo, ~/.venvs/infoloss-peers)
Run:         cargo build --release && ~/.venvs/infoloss-peers/bin/python bench/peers.py [--threads 2]
             [--workloads forward32,forward1,analyze,train,lemma2] [--iters 5] [--repeat 3]
With --repeat N the workloads run N times, interleaved (each ratio's two sides timed back to back),
and the median of the N ratios is printed per workload at the end: the figure the issues ask for.
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
        counts.append((pos.sum(1).flatten().bincount(), lin.sum(1).flatten().bincount()))

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


def lemma2_workload(images, threads, t=6):
    """Lemma 2 at every position of all 16 expansion layers of MobileNetV2 1.0@224: PyTorch with forward
    hooks and batched torch.linalg.matrix_rank (rtol = max(|S|, n)·eps per matrix) against
    `infoloss analyze --lemma2` on the same seeded weights and inputs; verdict counts must agree."""
    import csv
    from safetensors.torch import load_file
    with tempfile.TemporaryDirectory() as d:
        w, x = os.path.join(d, "w.safetensors"), os.path.join(d, "x.npy")
        flags = [] if t == 6 else ["--stage-expansion", ",".join(["1"] + [str(t)] * 6)]
        subprocess.run([infoloss_bin(), "init", "--seed", "0", "--out", w] + flags, check=True, capture_output=True)
        xs = np.random.default_rng(0).standard_normal((images, 3, 224, 224)).astype(np.float32)
        np.save(x, xs)
        t0 = time.perf_counter()
        subprocess.run([infoloss_bin(), "--threads", str(threads), "analyze", "--weights", w, "--input", x, "--lemma2",
                        "--out", os.path.join(d, "out"), "--quiet"], check=True, capture_output=True)
        ours_s = time.perf_counter() - t0
        with open(os.path.join(d, "out", "lemma2.csv")) as f:
            ours = {int(r["block"]): (int(r["positions"]), round(float(r["frac_invertible"]) * int(r["positions"])))
                    for r in csv.DictReader(f)}
        setting = [[1, 16, 1, 1], [t, 24, 2, 2], [t, 32, 3, 2], [t, 64, 4, 2], [t, 96, 3, 1], [t, 160, 3, 2], [t, 320, 1, 1]]
        m = torchvision.models.mobilenet_v2(inverted_residual_setting=setting).eval()
        m.load_state_dict(load_file(w))
    caps = {}
    for i in range(2, 18):
        blk = m.features[i].conv
        blk[0].register_forward_hook(lambda mod, inp, out, i=i: caps.__setitem__((i, "x"), inp[0]))
        blk[0][1].register_forward_hook(lambda mod, inp, out, i=i: caps.__setitem__((i, "y"), out))
    eps = torch.finfo(torch.float32).eps
    theirs = {}
    t0 = time.perf_counter()
    with torch.inference_mode():
        m(torch.from_numpy(xs))
        for i in range(2, 18):
            conv, bn = m.features[i].conv[0][0], m.features[i].conv[0][1]
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            B = conv.weight[:, :, 0, 0] * scale[:, None]                      # m × n, BN folded
            y = caps[(i, "y")].permute(0, 2, 3, 1).reshape(-1, B.shape[0])     # positions × m
            active = (y > 0) & (y < 6)
            k = active.sum(1)
            n = B.shape[1]
            inv = torch.zeros_like(k, dtype=torch.bool)
            for start in range(0, y.shape[0], 512):
                a = active[start:start + 512]
                mats = a[:, :, None] * B[None]                                  # zero rows outside S
                rtol = torch.clamp(k[start:start + 512], min=n).to(torch.float32) * eps
                rank = torch.linalg.matrix_rank(mats, rtol=rtol)
                inv[start:start + 512] = (k[start:start + 512] >= n) & (rank == n)
            theirs[i] = (y.shape[0], int(inv.sum()))
    torch_s = time.perf_counter() - t0
    agree = all(ours[i] == theirs[i] for i in theirs)
    total = sum(v[0] for v in theirs.values())
    inv = sum(v[1] for v in theirs.values())
    print(f"lemma2 ({images} images, 1.0@224, t={t}, all 16 expansion layers, {100 * inv / total:.2f}% invertible): infoloss {images / ours_s:.2f} img/s "
          f"(whole analyze run) | torch hooks + matrix_rank {images / torch_s:.3f} img/s | ratio {torch_s / ours_s:.1f}x | "
          f"verdict counts identical: {agree}")
    if not agree:
        for i in theirs:
            print(f"  block {i}: infoloss {ours[i]} torch {theirs[i]}")
    return torch_s / ours_s


def bench_torch_train(iters, batch=96):
    """torchvision mobilenet_v2(width_mult=0.5, num_classes=10), 32×32 inputs, RMSprop, train mode."""
    m = torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=10).train()
    opt = torch.optim.RMSprop(m.parameters(), lr=0.045, alpha=0.9, eps=1.0, momentum=0.9, weight_decay=4e-5)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.arange(batch) % 10
    loss_fn = torch.nn.CrossEntropyLoss()

    def step():
        opt.zero_grad()
        loss_fn(m(x), y).backward()
        opt.step()

    return batch / median_time(step, iters)


def one_round(work, a, ratios):
    """One pass over the workloads; appends each ratio to `ratios[name]`."""
    def note(name, value):
        ratios.setdefault(name, []).append(value)

    for batch in [32, 1]:
        if f"forward{batch}" not in work:
            continue
        o, line = ours(["bench", "forward", "--batch", str(batch), "--iters", str(a.iters)], a.threads)
        pe = bench_torch(batch, a.iters)
        pc = bench_torch(batch, a.iters, channels_last=True)
        ox = bench_ort(batch, a.iters, a.threads)
        ms = lambda r: 1e3 * batch / r
        print(f"forward batch {batch}: infoloss {o:.1f} img/s ({ms(o):.2f} ms/batch) | torch eager {pe:.1f} | torch channels_last {pc:.1f} "
              f"| onnxruntime {ox:.1f} img/s ({ms(ox):.2f} ms/batch)")
        print(f"  ratios: infoloss/ort {o / ox:.2f}x, infoloss/torch-eager {o / pe:.2f}x, "
              f"infoloss/torch-channels_last {o / pc:.2f}x")
        note(f"forward batch {batch}: infoloss / onnxruntime", o / ox)
        note(f"forward batch {batch}: infoloss / torch channels_last", o / pc)
    if "analyze" in work:
        o, line = ours(["bench", "analyze", "--batch", "32", "--iters", str(a.iters)], a.threads)
        ph = bench_torch_hooks(32, a.iters)
        ox = bench_ort(32, a.iters, a.threads)
        print(f"analyze batch 32 (forward + active-channel counts at 35 ReLU6 outputs): infoloss {o:.1f} img/s "
              f"| torch hooks {ph:.1f} img/s | onnxruntime plain forward {ox:.1f} img/s | "
              f"ratios {o / ph:.2f}x torch hooks, {o / ox:.2f}x ort plain   [{line}]")
        note("analyze batch 32: infoloss / torch hooks", o / ph)
        note("analyze batch 32: infoloss / onnxruntime plain forward", o / ox)
    if "train" in work:
        o, line = ours(["bench", "train", "--iters", str(a.iters)], a.threads)
        pt = bench_torch_train(a.iters)
        print(f"train (width 0.5, 32x32, 10 classes, batch 96, RMSprop): infoloss {o:.1f} img/s | torch {pt:.1f} img/s "
              f"| ratio {o / pt:.2f}x   [{line}]")
        note("train: infoloss / torch", o / pt)
    if "lemma2" in work:
        note("lemma2 t=6: infoloss / torch matrix_rank", lemma2_workload(a.lemma2_images, a.threads))
        note("lemma2 t=2: infoloss / torch matrix_rank", lemma2_workload(a.lemma2_images, a.threads, t=2))
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--workloads", default="forward32,forward1,analyze,lemma2,train")
    ap.add_argument("--lemma2-images", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    work = a.workloads.split(",")
    print(f"# peers: torch {torch.__version__}, threads {a.threads}, binary {infoloss_bin()}")
    ratios = {}
    for r in range(a.repeat):
        if a.repeat > 1:
            print(f"## round {r + 1} of {a.repeat}")
        one_round(work, a, ratios)
    if a.repeat > 1:
        print(f"## medians of {a.repeat} interleaved same-run ratios")
        for name, vals in ratios.items():
            print(f"{name}: median {float(np.median(vals)):.2f}x  (rounds: {', '.join(f'{v:.2f}' for v in vals)})")


if __name__ == "__main__":
    main()
