"""neurosim against the papers' reference code, side by side: P-1h training steps of EP, BPTT,
C-EP and C-VF.

The references are ernoult/updatesEPgradientsBPTT (Ernoult et al. 2019: EP, BPTT; ``--reference``)
and ernoult/continualEP (Ernoult et al. 2020: C-EP, C-VF; ``--continual``), run from checkouts
(``fetch`` them; their ``main.py`` loads MNIST through torchvision, which the ``--tvshim`` folder
stands in for, see ../shared/tools/tvshim/README.md). Each runs the 1-hidden-layer row of its
paper's README (784-512-10, batch 20): EP-1h and BPTT at T = 40, K = 15, beta = 0.1; C-EP-1h and
C-VF-1h at T = 40, K = 15, beta = 0.2 (C-VF with the random sign of beta). The reference's own
branches of ``netFunctions.train`` run (loss and prediction included, as neurosim's
``train_step`` computes them too) on batches collected before the clock starts; neurosim's
``train_step`` runs as ``neurosim bench`` times it (``mnist_fc1_ep``, ``mnist_fc1_bptt``,
``mnist_fc1_cep``, ``mnist_fc1_cvf``).

Each measurement is a fresh child process with 1 torch thread and subnormal floats flushed in both
(flushing alone changes the reference's speed about 2x); the two programs alternate, round after
round, so a shared machine's drift hits both, and the ratio is taken within each round (median
and range reported).

    python experiments/bench_reference.py --reference /work/.mirror/ernoult+updatesEPgradientsBPTT/repo \
        --continual /work/.mirror/ernoult+continualEP/repo --tvshim ../shared/tools/tvshim --data-dir ../shared/data

writes experiments/results/bench_reference.json (the speed page renders it). A checkout that is a
bare git directory (``fetch`` gives one) is exported to a temporary folder first.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from benchmeta import load_now, record

from neurosim.io import atomic_write_json

OUT = Path(__file__).parent / "results" / "bench_reference.json"

P1H = ["--action", "train", "--discrete", "--size_tab", "10", "512", "784", "--T", "40", "--Kmax", "15",
       "--device-label", "-1"]
REFERENCES = {
    # estimator: (repository, its README's 1-hidden-layer arguments (CPU), class, its train branch)
    "ep": ("ernoult/updatesEPgradientsBPTT", P1H + ["--lr_tab", "0.04", "0.08", "--beta", "0.1"], "EPdisc", "eqprop"),
    "bptt": ("ernoult/updatesEPgradientsBPTT", P1H + ["--lr_tab", "0.04", "0.08", "--beta", "0.1"], "EPdisc", "bptt"),
    "cep": ("ernoult/continualEP", P1H + ["--lr_tab", "0.0028", "0.0056", "--beta", "0.2", "--cep"], "EPdisc", "cep"),
    "cvf": ("ernoult/continualEP", P1H + ["--lr_tab", "0.0038", "0.0076", "--beta", "0.2", "--cep",
                                          "--learning-rule", "vf", "--randbeta", "0.5"], "VFdisc", "cvf"),
}
"""The README commands of the references' P-1h rows (Table 1 of each paper), on the CPU."""

CONFIGS = {"ep": "mnist_fc1_ep", "bptt": "mnist_fc1_bptt", "cep": "mnist_fc1_cep", "cvf": "mnist_fc1_cvf"}

REFERENCE_CHILD = r"""
import json, os, sys, time
import numpy as np
import torch
reference, tvshim, branch, batch_size, samples = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(1)
torch.set_flush_denormal(True)
sys.path[:0] = [reference, tvshim]
os.chdir(reference)
sys.argv = ["main.py", *json.loads(os.environ["NEUROSIM_REFERENCE_ARGS"]), "--batch-size", str(batch_size)]
import netClasses  # first, as running main.py does: it imports main (argv parsed, loaders, rho)
import main
net = getattr(netClasses, os.environ["NEUROSIM_REFERENCE_CLASS"])(main.args)
batches = []
for data, targets in main.train_loader:  # collected before timing: the loader's transforms are not the step
    if data.size(0) == batch_size:
        batches.append((data, targets))
    if len(batches) * batch_size >= samples + 3 * batch_size:
        break
criterion = torch.nn.MSELoss(reduction="sum")
if branch == "bptt":
    for layer in net.w:
        if layer is not None:
            layer.weight.requires_grad = True
            if layer.bias is not None:
                layer.bias.requires_grad = True

def step(data, targets):  # a branch of netFunctions.train, one batch
    s = net.initHidden(data.size(0))
    if branch == "bptt":
        net.zero_grad()
        s = net.forward(data, s, method="withgrad")
        pred = s[0].data.max(1, keepdim=True)[1]
        loss = (1 / (2 * s[0].size(0))) * criterion(s[0], targets)
        loss.backward()
        with torch.no_grad():
            for i in range(len(net.w)):
                if net.w[i] is not None:
                    w = net.w[i].weight
                    w -= net.lr_tab[i // 2] * w.grad
                    if net.w[i].bias is not None:
                        b = net.w[i].bias
                        b -= net.lr_tab[i // 2] * b.grad
    else:
        with torch.no_grad():
            s = net.forward(data, s)
            pred = s[0].data.max(1, keepdim=True)[1]
            loss = (1 / (2 * s[0].size(0))) * criterion(s[0], targets)
            seq = [x.clone() for x in s]
            if branch == "eqprop":  # EP: the update once, after the nudged phase
                s = net.forward(data, s, target=targets, beta=net.beta, method="nograd")
                net.updateWeights(net.beta, data, s, seq)
            else:  # C-EP, C-VF: the nudged phase updates at every step (net.cep); C-VF draws beta's sign
                beta = net.beta
                if net.randbeta > 0:
                    beta = (2 * np.random.binomial(1, net.randbeta, 1).item() - 1) * net.beta
                s = net.forward(data, s, target=targets, beta=beta, method="nograd")
    return pred, loss

for data, targets in batches[:3]:
    step(data, targets)
timed = batches[3:]
start = time.perf_counter()
for data, targets in timed:
    step(data, targets)
seconds = time.perf_counter() - start
print(json.dumps({"samples_per_second": len(timed) * batch_size / seconds, "samples": len(timed) * batch_size}))
"""

NEUROSIM_CHILD = r"""
import json, sys
import torch
config, data_dir, batch_size, samples = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(1)
torch.set_flush_denormal(True)
from neurosim.backends import get_backend
from neurosim.config import load_config
backend = get_backend("torch")(load_config(config, [f"data.dir={data_dir}", f"train.batch_size={batch_size}",
                                                    f"data.train_subset={samples}", "data.test_subset=1",
                                                    "compute.threads=1"]))
backend.build()
row = backend.bench(samples)
print(json.dumps({"samples_per_second": row["samples_per_second"], "samples": row["samples"]}))
"""


def exported(reference: Path) -> tuple[Path, tempfile.TemporaryDirectory | None]:
    """A folder holding the reference's files: the checkout itself, or a bare git directory's HEAD
    exported to a temporary folder."""
    if (reference / "netClasses.py").is_file():
        return reference, None
    if not (reference / "HEAD").is_file():
        raise SystemExit(f"--reference: {reference} holds neither netClasses.py nor a git directory")
    tmp = tempfile.TemporaryDirectory(prefix="neurosim-reference-")
    archive = subprocess.run(["git", "--git-dir", str(reference), "archive", "HEAD"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", tmp.name], input=archive, check=True)
    return Path(tmp.name), tmp


def child(code: str, args: list[str], env: dict[str, str]) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"a timing child failed ({' '.join(args[:3])}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def commit_of(reference: Path) -> str | None:
    for git_dir in (reference, reference / ".git"):
        done = subprocess.run(["git", "--git-dir", str(git_dir), "rev-parse", "HEAD"], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.strip()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", help="checkout (or bare git directory) of ernoult/updatesEPgradientsBPTT (EP, BPTT)")
    parser.add_argument("--continual", help="checkout (or bare git directory) of ernoult/continualEP (C-EP, C-VF)")
    parser.add_argument("--tvshim", required=True, help="the torchvision stand-in folder (../shared/tools/tvshim)")
    parser.add_argument("--data-dir", required=True, help="folder holding mnist/ with the official IDX .gz files")
    parser.add_argument("--estimators", default=None,
                        help="comma-separated, of ep, bptt (need --reference), cep, cvf (need --continual); "
                             "default: all that the given checkouts allow")
    parser.add_argument("--batch-sizes", default="20")
    parser.add_argument("--samples", type=int, default=1000, help="timed training samples per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(OUT))
    args = parser.parse_args()
    checkouts = {"ernoult/updatesEPgradientsBPTT": args.reference, "ernoult/continualEP": args.continual}
    estimators = (args.estimators.split(",") if args.estimators else
                  [e for e, spec in REFERENCES.items() if checkouts[spec[0]]])
    unknown = sorted(set(estimators) - set(CONFIGS))
    if unknown:
        parser.error(f"--estimators: unknown {unknown}; known: {', '.join(CONFIGS)}")
    for e in estimators:
        if not checkouts[REFERENCES[e][0]]:
            parser.error(f"--estimators {e}: needs the checkout of {REFERENCES[e][0]} "
                         f"({'--reference' if REFERENCES[e][0].endswith('BPTT') else '--continual'})")
    if not estimators:
        parser.error("give --reference and/or --continual")
    folders, temporary = {}, []
    for repository, path in checkouts.items():
        if path:
            folder, tmp = exported(Path(path).resolve())
            folders[repository] = folder
            temporary += [tmp] if tmp is not None else []
    tvshim = str(Path(args.tvshim).resolve())
    data_dir = str(Path(args.data_dir).resolve())
    env = {**os.environ, "MNIST_DIR": str(Path(data_dir) / "mnist"), "MNIST_LIMIT": str(args.samples + 200),
           "OMP_NUM_THREADS": "1"}
    load_start = load_now()
    rows = []
    try:
        for estimator in estimators:
            repository, reference_args, net_class, branch = REFERENCES[estimator]
            child_env = {**env, "NEUROSIM_REFERENCE_ARGS": json.dumps(reference_args),
                         "NEUROSIM_REFERENCE_CLASS": net_class}
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                rounds = []
                for _ in range(args.rounds):
                    ref = child(REFERENCE_CHILD, [str(folders[repository]), tvshim, branch, str(batch_size),
                                                  str(args.samples)], child_env)
                    ours = child(NEUROSIM_CHILD, [CONFIGS[estimator], data_dir, str(batch_size), str(args.samples)], env)
                    rounds.append({"reference": round(ref["samples_per_second"], 1),
                                   "neurosim": round(ours["samples_per_second"], 1),
                                   "ratio": round(ours["samples_per_second"] / ref["samples_per_second"], 2)})
                    print(estimator, batch_size, rounds[-1], flush=True)
                ratios = [r["ratio"] for r in rounds]
                rows.append({"estimator": estimator, "config": CONFIGS[estimator], "batch_size": batch_size,
                             "reference": {"repository": repository, "commit": commit_of(Path(checkouts[repository])),
                                           "args": reference_args},
                             "rounds": rounds, "ratio_median": statistics.median(ratios),
                             "ratio_range": [min(ratios), max(ratios)],
                             "reference_median": statistics.median(r["reference"] for r in rounds),
                             "neurosim_median": statistics.median(r["neurosim"] for r in rounds)})
    finally:
        for tmp in temporary:
            tmp.cleanup()
    atomic_write_json(Path(args.out), {
        **record(load_start, "1 thread per program"),
        "samples": args.samples, "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
