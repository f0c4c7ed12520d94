#!/bin/bash
# Numerics fingerprint of a build: one-epoch training runs (weights, metrics), quick.toml and
# fig1_spiral tables, jacobian CSVs, hooks/model/memory JSON, as SHA-256 sums. Run it with the binary
# before and after a refactor and diff the two sums.txt files: identical means numerics unchanged.
# usage: tools/numerics_fingerprint.sh BINARY OUTDIR   (≈ 5 min on 2 quiet cores)
B=$(realpath "$1"); O=$(realpath -m "$2"); rm -rf "$O"; mkdir -p "$O"; cd "$(dirname "$0")/.."
for sc in bottleneck expansion none; do
  for bn in linear relu6; do
    $B --threads 1 train --width 0.35 --epochs 1 --batch 16 --train-limit 128 --val-limit 64 --shortcut $sc --bottleneck $bn --optimizer adamw --out $O/train-$sc-$bn --quiet > /dev/null 2>&1
    sha256sum $O/train-$sc-$bn/weights.safetensors $O/train-$sc-$bn/metrics.csv | awk '{print $1}' >> $O/sums.txt
  done
done
$B --threads 1 run experiments/quick.toml --out $O/quick --quiet > /dev/null 2>&1
$B --threads 1 run experiments/fig1_spiral.toml --out $O/fig1 --set 'seeds="0..20"' --quiet > /dev/null 2>&1
for f in $(cd $O && find quick fig1 -name summary.csv -o -name claims.csv -o -name runs.csv | sort); do sha256sum $O/$f | sed "s|$O/||" >> $O/sums.txt; done
$B --threads 1 jacobian --init-seed 3 --width 0.35 --resolution 64 --classes 10 --out $O/jac > /dev/null 2>&1; sha256sum $O/jac/*.csv | sed "s|$O/||" >> $O/sums.txt
$B --threads 1 bench split --splits 1,2,C --iters 1 --width 0.35 --resolution 64 --out $O/split > $O/split.txt 2>&1; grep -i diff $O/split.txt >> $O/sums.txt
$B model --width 0.35 --resolution 64 --shortcut expansion --json | sha256sum >> $O/sums.txt
$B hooks --width 0.35 --resolution 64 --shortcut expansion --json | sha256sum >> $O/sums.txt
$B memory --fused --json | sha256sum >> $O/sums.txt
$B memory --json --shortcut expansion | sha256sum >> $O/sums.txt
