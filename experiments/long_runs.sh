#!/usr/bin/env bash
# The runs longer than a sitting (issues 18 and 20), started or continued in one command, on two
# cores: lane 1 runs the chip studies one after another (the 15-epoch C-EP study, then the
# papers' full length on four synapses); lane 2 the 40-epoch P-conv EP run, then its BPTT twin.
# Every run folder lives outside the work tree (RUNS, default ~/neurosim-runs) and every command
# continues where the last sitting stopped (sweeps continue by themselves, train with --resume).
# Logs: RUNS/NAME.log. Small outputs into experiments/results: see "publish" below.
# A machine is not always kept from one sitting to the next: where RUNS lost a run, it continues
# from what was published (a sweep's finished points; a small run's checkpoint, which publish
# keeps beside its outputs: the P-conv checkpoints are 0.25 MB, an ideal chip point's 1.6 MB; a
# device point's 8 to 18 MB are not kept (even xz-compressed its float32 weights and pulse counters
# come to 2.2 MB, over the 2 MB a tracked file may have), so an unfinished device point starts again).
# Usage: bash experiments/long_runs.sh DATA_DIR            (start or continue, in the background;
#                                                          LANES=1 or LANES=2: one lane only)
#        bash experiments/long_runs.sh DATA_DIR publish    (copy the small outputs of all of them)
set -euo pipefail
cd "$(dirname "$0")/.."
data_dir=${1:?usage: bash experiments/long_runs.sh DATA_DIR [publish]}
runs=${RUNS:-$HOME/neurosim-runs}
mkdir -p "$runs"

published=experiments/results
max_kept=2000000  # bytes: a checkpoint published with the small outputs is at most this (no tracked file over 2 MB)

restore_run() {  # RUNS lost the run (a new machine): continue from the published checkpoint
  local out=$runs/$1 saved=$published/$1
  if [ ! -f "$out/checkpoint.pt" ] && [ -f "$saved/checkpoint.pt" ]; then
    mkdir -p "$out" && cp "$saved/checkpoint.pt" "$out/"
    if [ -f "$saved/config.yaml" ]; then cp "$saved/config.yaml" "$out/"; fi
    echo "restored $out from $saved/checkpoint.pt" >> "$runs/$1.log"
  fi
}

restore_sweep() {  # RUNS lost the sweep: its finished points from the published small outputs, and
  # the unfinished ones that kept their checkpoint (a point whose result.json covers fewer epochs
  # than the point's and has no checkpoint, e.g. one seeded from a shorter run, starts again)
  local out=$runs/$1 saved=$published/$1 point
  if [ ! -f "$out/sweep.json" ] && [ -f "$saved/sweep.json" ]; then
    mkdir -p "$out/points" && cp "$saved/sweep.json" "$out/"
    python - "$saved" <<'PY' | while read -r point; do cp -a "$saved/points/$point" "$out/points/"; done
import json, sys
from pathlib import Path
from neurosim.sweeps.state import point_state
saved = Path(sys.argv[1])
for point in json.loads((saved / "sweep.json").read_text())["points"]:
    folder = saved / "points" / point["name"]
    if point_state(folder, point["epochs"]) == "done" or (folder / "checkpoint.pt").is_file():
        print(point["name"])
PY
    echo "restored the finished points of $out from $saved" >> "$runs/$1.log"
  fi
}

train() {  # a shipped experiment in RUNS/NAME, one thread, resumed when it has a checkpoint
  local name=$1 out=$runs/$1
  restore_run "$name"
  local args=(train "$name" --data-dir "$data_dir" --set compute.threads=1 --out "$out" --quiet)
  [ -f "$out/checkpoint.pt" ] && args+=(--resume)
  [ -f "$out/result.json" ] && return 0  # finished
  neurosim "${args[@]}" >> "$runs/$name.log" 2>&1 || echo "$name stopped: see $runs/$name.log"
}

sweep() {
  local name=$1
  restore_sweep "$name"
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
      python experiments/chip/collect.py "$runs/$name" --max-checkpoint-bytes "$max_kept" || echo "$name: not collected (see above)"
    fi
  done
  for name in mnist_conv_ep_tol mnist_conv_bptt; do
    python experiments/publish_run.py "$runs/$name" --max-checkpoint-bytes "$max_kept" || echo "$name: not published"
  done
  exit 0
fi

# The runs import neurosim from a copy of the package taken now (RUNS/.code/TIME), not from the
# work tree: an edit of the checkout while they run (a lazily imported module, new and old side by
# side) must not break them. Each lane holds a lock: starting the script again starts only the
# lanes that are not running (LANES="1 2" by default picks which).
code=$runs/.code/$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$code" && cp -a neurosim "$code/" && find "$code" -name __pycache__ -prune -exec rm -rf {} +
export PYTHONPATH="$code${PYTHONPATH:+:$PYTHONPATH}"
lane() {  # lane NUMBER COMMAND...: the commands one after another, unless the lane already runs
  local number=$1
  shift
  (
    flock -n 9 || { echo "lane $number is already running: not started again"; exit 0; }
    "$@"
  ) 9>"$runs/.lane$number.lock" &
}
lane1() { sweep chip_15ep_cep; seed_full; sweep chip_full; }
lane2() { train mnist_conv_ep_tol; train mnist_conv_bptt; }
for number in ${LANES:-1 2}; do
  case $number in
    1) lane 1 lane1 && echo "lane 1: chip_15ep_cep -> chip_full (code from $code, logs in $runs)" ;;
    2) lane 2 lane2 && echo "lane 2: mnist_conv_ep_tol -> mnist_conv_bptt (code from $code, logs in $runs)" ;;
    *) echo "LANES: unknown lane $number (1 or 2)" >&2; exit 2 ;;
  esac
done
