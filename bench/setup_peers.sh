#!/usr/bin/env bash
# Creates the Python venv with the reference peers (PyTorch, torchvision, ONNX Runtime) OUTSIDE the repo.
# Never run in CI. Usage: bash bench/setup_peers.sh [VENV_DIR]   (default: $HOME/.venvs/infoloss-peers)
set -euo pipefail
VENV="${1:-$HOME/.venvs/infoloss-peers}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install --upgrade pip
"$VENV/bin/pip" install torch torchvision onnxruntime onnx onnxscript safetensors numpy h5py
echo "peers installed in $VENV; run: $VENV/bin/python bench/peers.py"
