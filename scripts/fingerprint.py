"""Fingerprint a2c's behaviour: the weights and logs of three tiny fixed-seed runs, as hashes.

A refactor that should change nothing (issue 24's restructure, say) is checked by running this
before and after and comparing the JSON: a standard CartPole run, a fused one and a 4-member
population, each 20,000 steps, trained through the command line (so any layout of the package
works), then every model.keras's weights and every metrics.csv / evaluations.csv (clock columns
dropped) hashed.

    python scripts/fingerprint.py /tmp/fp-before > before.json   # on the old commit
    python scripts/fingerprint.py /tmp/fp-after > after.json     # on the new one
    diff before.json after.json && echo IDENTICAL
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np

COMMON = ["--env", "CartPole-v1", "--total-steps", "20000", "--eval-every", "10000", "--eval-episodes", "3"]
RUNS = {
    "standard": ["--seed", "3", *COMMON],
    "fused": ["--fused", "--seed", "3", *COMMON],
    "population": ["--fused", "--seeds", "0-3", *COMMON],
}
CLOCK = ("time/", "steps_per_s", "fps", "seconds")


def weights_hash(keras_file: Path) -> str:
    """sha256 over every weight array of a .keras file, by name (read with h5py: no Keras)."""
    with zipfile.ZipFile(keras_file) as z:
        data = z.read("model.weights.h5")
    h = hashlib.sha256()
    with h5py.File(io.BytesIO(data), "r") as f:

        def visit(name: str, obj: object) -> None:
            if isinstance(obj, h5py.Dataset):
                h.update(name.encode())
                h.update(np.asarray(obj).tobytes())

        f.visititems(visit)
    return h.hexdigest()


def csv_hash(csv_file: Path) -> str:
    """sha256 of a CSV's rows without its clock columns (they differ from run to run)."""
    with open(csv_file, newline="") as f:
        rows = list(csv.reader(f))
    keep = [i for i, c in enumerate(rows[0]) if not any(k in c for k in CLOCK)]
    return hashlib.sha256(json.dumps([[r[i] for i in keep] for r in rows]).encode()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", type=Path, help="where the three runs go (replaced)")
    out = parser.parse_args().runs
    result: dict[str, dict[str, str]] = {}
    for name, args in RUNS.items():
        run = out / name
        cmd = [sys.executable, "-m", "a2c", "train", *args, "--run-dir", str(run), "--overwrite", "--no-progress"]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        result[name] = {str(m.relative_to(run)): weights_hash(m) for m in sorted(run.rglob("model.keras"))}
        for pattern in ("metrics.csv", "evaluations.csv"):
            result[name].update({str(m.relative_to(run)): csv_hash(m) for m in sorted(run.rglob(pattern))})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
