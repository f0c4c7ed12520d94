"""Dumps the weights of a Keras MobileNetV2 .h5 file into a safetensors file with Keras names
(`{layer}/{weight}`, e.g. `block_3_expand/kernel`), which `infoloss convert keras` maps to torchvision
names and layouts.

    pip install h5py numpy safetensors
    python tools/keras_h5_to_safetensors.py mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5 keras.safetensors
    infoloss convert keras keras.safetensors mobilenet_v2_keras.safetensors --width 1.0
    infoloss forward --weights mobilenet_v2_keras.safetensors --input x.npy --output y.npy   # padding tf, bn-eps 1e-3 stored

Inputs for such a model are preprocessed the Keras way (x / 127.5 - 1; `infoloss analyze --preprocess keras`).
"""
import sys

import h5py
import numpy as np
from safetensors.numpy import save_file


def main(src, dst):
    out = {}
    with h5py.File(src, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                parts = name.split("/")
                layer, weight = parts[0], parts[-1].split(":")[0]
                out[f"{layer}/{weight}"] = np.ascontiguousarray(obj[()].astype(np.float32))

        root.visititems(visit)
    save_file(out, dst)
    print(f"wrote {len(out)} tensors to {dst}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: keras_h5_to_safetensors.py IN.h5 OUT.safetensors")
    main(sys.argv[1], sys.argv[2])
