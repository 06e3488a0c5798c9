#!/usr/bin/env bash
# Reproduces the accuracy table of the results pages: trains paper rows (neurosim/presets/experiments) and keeps their
# small outputs (config.yaml, metrics.jsonl, result.json, curves.png) in experiments/results/.
# Usage: bash experiments/run_all.sh [DATA_DIR] [NAMES...]   (two runs at a time, one thread each)
#        DEVICE=cuda bash experiments/run_all.sh DATA_DIR mnist_conv_ep ...   (on a GPU: one run at a
#        time; an interrupted or CPU-started run in experiments/results/NAME is resumed there)
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:-}
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(mnist_fc1_ep mnist_fc1_bptt mnist_eb1_ep mnist_eb1_bptt mnist_fc2_ep mnist_fc2_bptt)
run() {
  local name=$1 out=experiments/results/$1
  local args=(train "$name" --out "$out" --quiet)  # a shipped experiment, by name
  if [ -n "${DEVICE:-}" ]; then args+=(--set "compute.device=$DEVICE"); else args+=(--set compute.threads=1); fi
  [ -n "$data_dir" ] && args+=(--data-dir "$data_dir")
  [ -f "$out/checkpoint.pt" ] && args+=(--resume)
  neurosim "${args[@]}" > "$out.log" 2>&1 || echo "$name failed: see $out.log"
}
mkdir -p experiments/results
if [ -n "${DEVICE:-}" ]; then  # one GPU: one run at a time
  for name in "${names[@]}"; do run "$name"; done
  exit 0
fi
for ((i = 0; i < ${#names[@]}; i += 2)); do
  run "${names[i]}" &
  [ $((i + 1)) -lt ${#names[@]} ] && run "${names[i + 1]}" &
  wait
done
