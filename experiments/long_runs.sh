#!/usr/bin/env bash
# The runs longer than a sitting (issues 18 and 20), started or continued in one command, on two
# cores: lane 1 runs the chip studies one after another (the 15-epoch C-EP study, then the
# papers' full length on four synapses); lane 2 the 40-epoch P-conv EP run, then its BPTT twin.
# Every run folder lives outside the work tree (RUNS, default ~/neurosim-runs) and every command
# continues where the last sitting stopped (sweeps continue by themselves, train with --resume).
# Logs: RUNS/NAME.log. Small outputs into experiments/results: see "publish" below.
# Usage: bash experiments/long_runs.sh DATA_DIR            (start or continue, in the background)
#        bash experiments/long_runs.sh DATA_DIR publish    (copy the small outputs of all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:?usage: bash experiments/long_runs.sh DATA_DIR [publish]}
runs=${RUNS:-$HOME/neurosim-runs}
mkdir -p "$runs"

train() {  # a shipped experiment in RUNS/NAME, one thread, resumed when it has a checkpoint
  local name=$1 out=$runs/$1
  local args=(train "$name" --data-dir "$data_dir" --set compute.threads=1 --out "$out" --quiet)
  [ -f "$out/checkpoint.pt" ] && args+=(--resume)
  [ -f "$out/result.json" ] && return 0  # finished
  neurosim "${args[@]}" >> "$runs/$name.log" 2>&1 || echo "$name stopped: see $runs/$name.log"
}

sweep() {
  local name=$1
  neurosim sweep "experiments/chip/$name.yaml" --data-dir "$data_dir" --out "$runs/$name" --workers 1 \
    >> "$runs/$name.log" 2>&1 || echo "$name stopped: see $runs/$name.log"
}

seed_full() {  # chip_full's C-EP points continue chip_15ep_cep's finished 15-epoch runs (same config
  # but train.epochs, constant rate: the first 15 epochs of the 100 are exactly those runs)
  local d pair src dst
  for d in ideal aihwkit_ecram taox_tio2 aihwkit_pcm; do
    for pair in "beta=0.2_lr=0.0056-0.0028|name=cep_beta=0.2_lr=0.0056-0.0028_epochs=100" \
                "beta=-0.2_lr=0.0112-0.0056|name=cep_beta=-0.2_lr=0.0112-0.0056_epochs=100"; do
      src=$runs/chip_15ep_cep/points/device=${d}_${pair%|*}
      dst=$runs/chip_full/points/device=${d}_${pair#*|}
      if [ -f "$src/checkpoint.pt" ] && [ -f "$src/result.json" ] && [ ! -e "$dst" ]; then
        mkdir -p "$runs/chip_full/points" && cp -a "$src" "$dst" && echo "seeded $dst" >> "$runs/chip_full.log"
      fi
    done
  done
}

if [ "${2:-}" = publish ]; then
  for name in chip_15ep_cep chip_full; do  # a sweep folder once its sweep has started (sweep.json)
    if [ -f "$runs/$name/sweep.json" ]; then
      python experiments/chip/collect.py "$runs/$name" || echo "$name: not collected (see above)"
    fi
  done
  for name in mnist_conv_ep_tol mnist_conv_bptt; do
    if [ -f "$runs/$name/metrics.jsonl" ]; then
      mkdir -p "experiments/results/$name"
      for f in config.yaml metrics.jsonl curves.png result.json; do
        [ -f "$runs/$name/$f" ] && cp "$runs/$name/$f" "experiments/results/$name/"
      done
    fi
  done
  exit 0
fi

(sweep chip_15ep_cep; seed_full; sweep chip_full) &
(train mnist_conv_ep_tol; train mnist_conv_bptt) &
echo "started: lane 1 chip_15ep_cep -> chip_full, lane 2 mnist_conv_ep_tol -> mnist_conv_bptt (logs in $runs)"
