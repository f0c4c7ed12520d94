#!/usr/bin/env bash
# Fetches Fashion-MNIST (MIT licence; 60,000 + 10,000 28×28 images, 10 classes) from Debian's
# `dataset-fashion-mnist` package without root: downloads the .deb and unpacks its four IDX files
# into DIR (default ./data/fashion-mnist). Then: infoloss train --data fashion-mnist:DIR
# With root, `apt-get install -y dataset-fashion-mnist` puts them where `--data fashion-mnist` looks.
set -euo pipefail
DIR="${1:-data/fashion-mnist}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(cd "$TMP" && apt-get download dataset-fashion-mnist >/dev/null)
dpkg-deb -x "$TMP"/dataset-fashion-mnist_*.deb "$TMP/x"
mkdir -p "$DIR"
cp "$TMP"/x/usr/share/datasets/fashion-mnist/*-ubyte.gz "$DIR"/
echo "Fashion-MNIST in $DIR: $(ls "$DIR" | tr '\n' ' ')"
