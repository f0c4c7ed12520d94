"""Generates the torchvision fixture that tests/torchvision_fixture.rs checks our forward pass against.

Not run in CI (it needs PyTorch): run `bash bench/setup_peers.sh` once, then
    ~/.venvs/infoloss-peers/bin/python bench/make_fixture.py
It writes, under tests/fixtures/:
  tv_mobilenet_v2_w025.safetensors  torchvision mobilenet_v2(width_mult=0.25, num_classes=10) state_dict,
                                    saved with safetensors.torch.save_file (no infoloss metadata),
                                    seeded init plus random BatchNorm statistics calibrated on random data, so BN folding is exercised
  tv_input.npy                      2×3×64×64 float32 input
  tv_logits.npy                     the model's eval-mode logits (2×10 float32)
"""
import os

import numpy as np
import torch
import torchvision
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures")


def main():
    torch.manual_seed(0)
    model = torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=10)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.momentum = None  # cumulative average: running stats = statistics of the calibration data
                m.reset_running_stats()
        # Calibrate BN statistics on random data so activations neither vanish nor explode and the
        # logits depend clearly on the input (an input-ignoring bug then fails the test).
        model.train()
        model(torch.randn(16, 3, 64, 64))
        model.classifier[1].weight.normal_(0.0, 0.1)
        model.classifier[1].bias.uniform_(-0.1, 0.1)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits = model(x)
    os.makedirs(OUT, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()},
              os.path.join(OUT, "tv_mobilenet_v2_w025.safetensors"))
    np.save(os.path.join(OUT, "tv_input.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(OUT, "tv_logits.npy"), logits.numpy().astype(np.float32))
    print("logits", logits.numpy())


if __name__ == "__main__":
    main()
