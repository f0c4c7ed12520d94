"""Time-to-accuracy peer: the Fashion-MNIST recipe of experiments/*_fashion.toml trained with PyTorch,
for the README's comparison with `infoloss train` (same epochs, same threads; wall time and test
accuracy of both). Not run in CI.

Recipe (as infoloss applies it): torchvision mobilenet_v2(width_mult=0.5, num_classes=10, dropout 0.2)
with strides 2,1,2,2,1,2,1,1 (stem, then the seven stages); 28×28 images normalised with mean 0.1307 /
std 0.3081, zero-padded to 32×32 and replicated to 3 channels; 55,000 training images (5,000 held out,
a different fixed shuffle than infoloss's, which does not matter for the test accuracy); random crop
(shift of up to 4 pixels with zero fill) and horizontal flip; AdamW lr 0.003, betas (0.9, 0.999),
eps 1e-8, weight decay 0.01 on conv and linear weights only; cosine decay to 0 updated every step;
batch 64; 10 epochs; accuracy on all 10,000 test images.

Usage: ~/.venvs/infoloss-peers/bin/python bench/fashion_torch.py [--epochs 10] [--threads 2] [--seed 0]
       [--dir /usr/share/datasets/fashion-mnist]
and for infoloss, the same recipe:
       infoloss --threads 2 train --data fashion-mnist --width 0.5 --strides 2,1,2,2,1,2,1,1 --epochs 10 \
         --batch 64 --optimizer adamw --lr 0.003 --schedule cosine --augment crop-flip --out DIR
"""
import argparse
import gzip
import math
import os
import time

import numpy as np
import torch
import torchvision


def idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    if magic == 2051:
        n, r, c = (int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(3))
        return np.frombuffer(data, np.uint8, offset=16).reshape(n, r, c)
    n = int.from_bytes(data[4:8], "big")
    return np.frombuffer(data, np.uint8, offset=8)[:n]


def images(raw):
    x = (raw.astype(np.float32) / 255.0 - 0.1307) / 0.3081
    x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    return torch.from_numpy(np.repeat(x[:, None], 3, axis=1).copy())


def augment(x, gen):
    """Random shift of up to 4 pixels (zero fill) and a horizontal flip, per image."""
    n = x.shape[0]
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (n,), generator=gen)
    dx = torch.randint(0, 9, (n,), generator=gen)
    flip = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x)
    for i in range(n):
        img = padded[i, :, dy[i]:dy[i] + 32, dx[i]:dx[i] + 32]
        out[i] = img.flip(-1) if flip[i] else img
    return out


def model():
    # Table 2 with the recipe's stage strides 1,2,2,1,2,1,1 (the stem's 2 is set below).
    setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 1], [6, 96, 3, 2], [6, 160, 3, 1], [6, 320, 1, 1]]
    m = torchvision.models.mobilenet_v2(width_mult=0.5, num_classes=10, inverted_residual_setting=setting)
    m.features[0][0].stride = (2, 2)
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    xtr = images(idx(os.path.join(a.dir, "train-images-idx3-ubyte.gz")))
    ytr = torch.from_numpy(idx(os.path.join(a.dir, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    xte = images(idx(os.path.join(a.dir, "t10k-images-idx3-ubyte.gz")))
    yte = torch.from_numpy(idx(os.path.join(a.dir, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
    keep = torch.from_numpy(np.random.default_rng(12345).permutation(len(xtr))[len(xtr) // 12:])
    xtr, ytr = xtr[keep], ytr[keep]
    m = model()
    print(f"parameters: {sum(p.numel() for p in m.parameters())}", flush=True)
    decay = [p for n, p in m.named_parameters() if p.dim() > 1]
    no_decay = [p for n, p in m.named_parameters() if p.dim() <= 1]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                            lr=0.003, betas=(0.9, 0.999), eps=1e-8)
    batch, steps = 64, math.ceil(len(xtr) / 64)
    loss_fn = torch.nn.CrossEntropyLoss()
    t0 = time.perf_counter()
    for epoch in range(a.epochs):
        m.train()
        order = torch.randperm(len(xtr), generator=gen)
        te = time.perf_counter()
        for s in range(steps):
            for g in opt.param_groups:
                g["lr"] = 0.5 * 0.003 * (1 + math.cos(math.pi * min((epoch + s / steps) / a.epochs, 1.0)))
            ix = order[s * batch:(s + 1) * batch]
            opt.zero_grad()
            loss_fn(m(augment(xtr[ix], gen)), ytr[ix]).backward()
            opt.step()
        print(f"epoch {epoch + 1}: {time.perf_counter() - te:.1f} s", flush=True)
    train_s = time.perf_counter() - t0
    m.eval()
    correct = 0
    with torch.inference_mode():
        for i in range(0, len(xte), 500):
            correct += (m(xte[i:i + 500]).argmax(1) == yte[i:i + 500]).sum().item()
    print(f"torch {torch.__version__}, {a.threads} threads: {a.epochs} epochs in {train_s:.1f} s "
          f"({a.epochs * len(xtr) / train_s:.0f} img/s), test accuracy {correct / len(xte):.4f}")


if __name__ == "__main__":
    main()
