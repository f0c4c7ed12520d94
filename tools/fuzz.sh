#!/usr/bin/env bash
# Fuzzes the parsers that read user files (not part of CI): safetensors weights, .npy arrays, IDX
# (MNIST/Fashion-MNIST) and CIFAR records, PNG/JPEG decoding, TOML experiment specs and --set
# overrides. Each target runs for SECONDS (default 600) with libFuzzer (cargo-fuzz, nightly toolchain,
# debug assertions on so integer overflow is a crash too), seeded with real files of each format.
#
# Usage: tools/fuzz.sh [SECONDS] [TARGET…]      (needs: cargo install cargo-fuzz; rustup toolchain nightly)
# Prints per target: runs, seconds, crashes; exits 1 if any target crashed (inputs in fuzz/artifacts/).
set -uo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-600}"
shift || true
TARGETS=("$@")
[[ ${#TARGETS[@]} -eq 0 ]] && TARGETS=(safetensors npy idx cifar image spec overrides)

cd fuzz
cargo +nightly fuzz build -O -a -s none || exit 1

# Seed corpora from real files of each format.
seed() { mkdir -p "corpus/$1"; cp "${@:2}" "corpus/$1/" 2>/dev/null || true; }
seed npy ../tests/fixtures/*.npy
seed spec ../experiments/*.toml
mkdir -p corpus/safetensors corpus/idx corpus/cifar corpus/image corpus/overrides
python3 - <<'PY'
import struct, zlib, os
# IDX: first byte = label-file length / 4, then labels, then images (see fuzz_targets/idx.rs).
labels = struct.pack('>II', 2049, 2) + bytes([3, 7])
images = struct.pack('>IIII', 2051, 2, 4, 4) + bytes(range(32))
open('corpus/idx/two', 'wb').write(bytes([len(labels) // 4 + 1]) + labels + images)
# CIFAR-10 (even first byte) and CIFAR-100 (odd) records.
open('corpus/cifar/c10', 'wb').write(bytes([0]) + (bytes([4]) + bytes(3072)) * 2)
open('corpus/cifar/c100', 'wb').write(bytes([1]) + (bytes([2, 57]) + bytes(3072)))
# A 3×2 RGB PNG.
def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
raw = b''.join(b'\x00' + bytes([10, 20, 30] * 3) for _ in range(2))
png = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', 3, 2, 8, 2, 0, 0, 0)) + chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b'')
open('corpus/image/tiny.png', 'wb').write(png)
# A small safetensors file: two F32 tensors and string metadata, as torch and infoloss write them.
import json
hdr = {"__metadata__": {"format": "pt"}, "features.0.0.weight": {"dtype": "F32", "shape": [2, 1, 1, 1], "data_offsets": [0, 8]},
       "features.0.1.running_var": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}
h = json.dumps(hdr).encode(); h += b' ' * (-len(h) % 8)
open('corpus/safetensors/small', 'wb').write(struct.pack('<Q', len(h)) + h + struct.pack('<4f', 1.0, -2.0, 0.5, 1.5))
open('corpus/overrides/a', 'w').write('seeds=0..3\nmodel.width=0.5\ntrain.epochs=2')
PY

status=0
for t in "${TARGETS[@]}"; do
    log="$(mktemp)"
    start=$(date +%s)
    cargo +nightly fuzz run -O -a -s none "$t" "corpus/$t" -- -max_total_time="$SECONDS_PER_TARGET" -max_len=65536 -rss_limit_mb=4096 -timeout=30 >"$log" 2>&1
    rc=$?
    secs=$(( $(date +%s) - start ))
    runs=$(grep -oE 'Done [0-9]+ runs' "$log" | grep -oE '[0-9]+' | tail -1)
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    printf '%-12s %6ss  %12s runs  exit %d  %d crash/timeout/oom inputs\n' "$t" "$secs" "${runs:-?}" "$rc" "$crashes"
    if [[ $rc -ne 0 || $crashes -gt 0 ]]; then status=1; tail -30 "$log"; fi
    rm -f "$log"
done
exit $status
