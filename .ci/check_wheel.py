"""Check a built wheel: the package and its presets, nothing of the lab (scripts, results).

    python .ci/check_wheel.py dist/neurosim-*.whl
"""

from __future__ import annotations

import sys
import zipfile


def main(path: str) -> int:
    names = zipfile.ZipFile(path).namelist()
    package = [n for n in names if not n.split("/")[0].endswith(".dist-info")]
    problems = [n for n in package if not n.startswith("neurosim/")]
    problems += [n for n in package if "/results/" in n or n.startswith("neurosim/experiments/")]
    problems += [n for n in package if n.endswith((".jsonl", ".pt", ".png", ".log", ".csv"))]
    needed = ["neurosim/presets/experiments/quickstart.yaml", "neurosim/presets/devices/ideal.yaml",
              "neurosim/presets/circuits/mnist_fc1.yaml", "neurosim/presets/sweeps/cep_beta_eta.yaml",
              "neurosim/presets/studies/fig1c_cvf.yaml",
              "neurosim/presets/datasets/mnist-sample/train-images-idx3-ubyte.gz"]
    problems += [f"missing: {n}" for n in needed if n not in names]
    size = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    print(f"{path}: {len(package)} files, {size / 1e6:.2f} MB unpacked")
    for problem in problems:
        print(f"  not in a wheel: {problem}" if not problem.startswith("missing") else f"  {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
