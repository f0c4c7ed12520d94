#!/usr/bin/env bash
# Kill-and-resume torture test (not part of CI: it takes minutes).
#
# For `infoloss train` and for `infoloss run`, K random and K targeted `kill -9`s: each cycle starts a
# fresh output folder, kills the process, resumes it (train --resume / run again) and compares the
# results byte for byte with an uninterrupted reference run.
#   random:   the kill lands at a random moment of the run;
#   targeted: the binary is built with the `failpoints` feature and told (FAILPOINTS) to stall at one
#             named point — between the files of a checkpoint, before the pointer moves, before the
#             result or between report tables — at a random occurrence; the script waits until the
#             process stalls there (no CPU time used for 0.4 s) and kills it then.
#
# Usage: tools/torture.sh [K]   (default K = 20; prints one line per cycle and a summary;
#                                exits 1 if any cycle differs)
set -uo pipefail
cd "$(dirname "$0")/.."
K="${1:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/infoloss-target}"
WORK="$(mktemp -d /tmp/infoloss-torture.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --features failpoints --quiet
BIN="$WORK/infoloss-failpoints"
cp "$CARGO_TARGET_DIR/release/infoloss" "$BIN"

TRAIN_ARGS=(train --width 0.35 --epochs 4 --batch 16 --train-limit 96 --val-limit 32 --quiet)
TRAIN_FILES=(metrics.csv weights.safetensors)
RUN_FILES=(summary.csv claims.csv runs.csv curves.csv)
SPEC="$WORK/tiny.toml"
cat > "$SPEC" <<'EOF'
name = "torture"
kind = "train"
seeds = [0, 1]
data = "synthetic"
[model]
width = 0.1
[train]
epochs = 3
batch = 32
optimizer = "adamw"
train-limit = 96
val-limit = 32
[analysis]
images = 4
[grid]
"model.bottleneck" = ["linear", "relu6"]
[[claims]]
id = "linear-beats-relu6"
statement = "torture"
metric = "val_acc"
a = "bottleneck=linear"
b = "bottleneck=relu6"
EOF

start_train() { "$BIN" --threads 2 "${TRAIN_ARGS[@]}" --out "$1" "${@:2}" >/dev/null 2>&1; }
start_run() { "$BIN" --threads 2 run "$SPEC" --out "$1" --quiet >/dev/null 2>&1; }
# In the background, as the process itself (exec), so that $! is the pid that `kill -9` must hit.
spawn() { # kind out
    if [[ $1 == train ]]; then
        (exec "$BIN" --threads 2 "${TRAIN_ARGS[@]}" --out "$2" >/dev/null 2>&1) &
    else
        (exec "$BIN" --threads 2 run "$SPEC" --out "$2" --quiet >/dev/null 2>&1) &
    fi
}
# Resumes and checks that it really resumed: a train resume must start at the epoch its pointer names;
# a run must reuse every run whose result.json the killed process had written.
resume_train() {
    if [[ -f "$1/checkpoint.json" ]]; then
        local k
        k=$(grep -oE '"epoch": *[0-9]+' "$1/checkpoint.json" | grep -oE '[0-9]+$')
        local said
        said=$("$BIN" --threads 2 "${TRAIN_ARGS[@]}" --out "$1" --resume 2>&1)
        grep -q "resumed from the checkpoint of epoch $k" <<<"$said" || echo "did not resume at epoch $k"
    else
        start_train "$1"
    fi
}
resume_run() {
    local done
    done=$(find "$1" -name result.json 2>/dev/null | wc -l)
    local said
    said=$("$BIN" --threads 2 run "$SPEC" --out "$1" --quiet 2>&1)
    grep -qE "executed, $done already finished" <<<"$said" || echo "did not reuse the $done finished runs"
}

# Seconds of CPU (user + system) a process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo -1; }

# Waits until process $1 stalls (no CPU for 0.4 s after it has used some) — it is sleeping at the
# failpoint — or exits.
# Returns 0 when it stalled, 1 when it exited first.
wait_stall() {
    local pid=$1 last now
    last=$(cpu_ticks "$pid")
    while kill -0 "$pid" 2>/dev/null; do
        sleep 0.4
        now=$(cpu_ticks "$pid")
        [[ "$now" == "-1" ]] && return 1
        [[ "$now" == "$last" && "$now" != "0" ]] && return 0
        last=$now
    done
    return 1
}

same() { # same REF OUT FILE…
    local ref=$1 out=$2 f
    shift 2
    for f in "$@"; do
        cmp -s "$ref/$f" "$out/$f" || { echo "differs: $f"; return 1; }
    done
    if find "$out" -name '.*.tmp' | grep -q .; then echo "temp files left"; return 1; fi
    return 0
}

echo "reference runs…"
t0=$(date +%s.%N)
start_train "$WORK/train-ref" || { echo "reference train failed"; exit 1; }
t_train=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
t0=$(date +%s.%N)
start_run "$WORK/run-ref" || { echo "reference run failed"; exit 1; }
t_run=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }')
echo "train takes ${t_train}s, run takes ${t_run}s"

TRAIN_POINTS=(train-before-checkpoint checkpoint-between-files checkpoint-before-pointer checkpoint-before-cleanup train-before-outputs train-between-outputs)
RUN_POINTS=(run-before-result run-after-result report-between-tables checkpoint-before-pointer checkpoint-between-files train-before-outputs)
declare -A DIFF=([train-random]=0 [train-targeted]=0 [run-random]=0 [run-targeted]=0)
declare -A DONE=([train-random]=0 [train-targeted]=0 [run-random]=0 [run-targeted]=0)

cycle() { # kind mode i
    local kind=$1 mode=$2 i=$3 out="$WORK/$1-$2-$3" pid what ref files
    if [[ $kind == train ]]; then ref="$WORK/train-ref"; files=("${TRAIN_FILES[@]}"); else ref="$WORK/run-ref"; files=("${RUN_FILES[@]}"); fi
    if [[ $mode == random ]]; then
        local t=${t_train}
        [[ $kind == run ]] && t=${t_run}
        local delay
        delay=$(awk -v t="$t" -v r="$RANDOM" 'BEGIN { printf "%.3f", 0.05 + t * r / 32767 }')
        spawn "$kind" "$out"
        pid=$!
        sleep "$delay"
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        what="after ${delay}s"
    else
        local points=("${TRAIN_POINTS[@]}")
        [[ $kind == run ]] && points=("${RUN_POINTS[@]}")
        local point=${points[$((i % ${#points[@]}))]}
        local skip=$((RANDOM % 3))
        [[ $point == report-between-tables ]] && skip=0   # the report is written once per run
        FAILPOINTS="$point=${skip}*off->sleep(60000)" spawn "$kind" "$out"
        pid=$!
        if wait_stall "$pid"; then what="at $point (hit $((skip + 1)))"; else what="($point hit $((skip + 1)) not reached)"; fi
        kill -9 "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    fi
    local resumed verdict
    if [[ $kind == train ]]; then resumed=$(resume_train "$out"); else resumed=$(resume_run "$out"); fi
    if verdict=$(same "$ref" "$out" "${files[@]}"); then verdict="identical"; else DIFF[$kind-$mode]=$((DIFF[$kind-$mode] + 1)); fi
    if [[ -n $resumed ]]; then verdict="$verdict, but $resumed"; DIFF[$kind-$mode]=$((DIFF[$kind-$mode] + 1)); fi
    DONE[$kind-$mode]=$((DONE[$kind-$mode] + 1))
    if pgrep -f -- "--out $out" >/dev/null; then verdict="$verdict (but the killed process survived)"; DIFF[$kind-$mode]=$((DIFF[$kind-$mode] + 1)); fi
    printf '%-6s %-8s %3d  kill %-45s %s\n' "$kind" "$mode" "$i" "$what" "$verdict"
    rm -rf "$out"
}

for i in $(seq 1 "$K"); do
    for kind in train run; do
        for mode in random targeted; do
            cycle "$kind" "$mode" "$i"
        done
    done
done

echo
status=0
for key in train-random train-targeted run-random run-targeted; do
    echo "$key: ${DONE[$key]} kills, ${DIFF[$key]} differences"
    [[ ${DIFF[$key]} -eq 0 ]] || status=1
done
exit $status
