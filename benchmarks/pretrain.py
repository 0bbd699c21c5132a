"""Pretrain the small models' encoders on many labs' generated tiles, and write the files segtutor ships.

Runs :func:`segtutor.train.pretrain.pretrain_encoder` with the default :class:`PretrainRecipe` for each model,
and writes ``<model>_small.pt`` (the encoder's weights, float16) and ``<model>_small.json`` (recipe, seed, input
statistics, scores, seconds, versions, licence, sha256) into ``segtutor/models/pretrained/``.

    python benchmarks/pretrain.py                      # all three small models, a few minutes each on 2 cores
    python benchmarks/pretrain.py --models unet        # one
    python benchmarks/pretrain.py --models unet --check  # train again in a temporary folder, compare the sha256

The recipe fixes the seed, the step count and the CPU thread count, so ``--check`` on a CPU must print "same
weights" (a different torch version or CPU kind may round differently, and a segtutor whose training loop draws
its batches in another order trains other weights: the record names the commit).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from dataclasses import replace
from pathlib import Path

from segtutor.models.transfer import ENCODERS, PRETRAINED_DIR
from segtutor.train.pretrain import PretrainRecipe, pretrain_encoder, save_encoder


def commit() -> str:
    """The segtutor commit this runs from (the recipe trains through ``fit``, whose data order may change)."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).parent, text=True,
                              capture_output=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's steps (not for shipping)")
    parser.add_argument("--check", action="store_true", help="train in a temporary folder and compare with the shipped")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args()
    source = commit()  # before training: the files may change meanwhile
    for name in args.models:
        recipe = PretrainRecipe(name)
        if args.steps is not None:
            recipe = replace(recipe, steps=args.steps)
        print(f"load average {os.getloadavg()[0]:.1f}; pretraining {name}: {recipe}", flush=True)
        model, record = pretrain_encoder(recipe)
        record["made with"] = {"command": f"python benchmarks/pretrain.py --models {name}", "segtutor": source}
        folder = Path(tempfile.mkdtemp(prefix="segtutor-pretrain-")) if args.check else args.out
        weights = save_encoder(model, record, folder)
        written = json.loads(weights.with_suffix(".json").read_text())
        print(f"  {record['seconds']:.0f} s ({record['steps per second']:.1f} steps/s), "
              f"{weights.stat().st_size / 1e6:.2f} MB, {written['parameters']} parameters; "
              f"{record['scores of the whole pretrained network']}; load average {os.getloadavg()[0]:.1f}")
        if args.check:
            shipped = json.loads((args.out / weights.with_suffix(".json").name).read_text())
            same = shipped["sha256"] == written["sha256"]
            print(f"  {'same weights' if same else 'DIFFERENT weights'}: sha256 {written['sha256'][:16]}… "
                  f"(shipped {shipped['sha256'][:16]}…)")
        else:
            print(f"  wrote {weights} and {weights.with_suffix('.json').name}")


if __name__ == "__main__":
    main()
