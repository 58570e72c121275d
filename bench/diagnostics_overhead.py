"""Cost of diagnostics and logging on ring8: the same run with and without them, side by side.

    .venv/bin/python bench/diagnostics_overhead.py [--steps 2000] [--rounds 3] [--threads 1]

"with" = what every run directory gets: metrics.jsonl, sample snapshots, the diagnostics callback
(signals every log window, events), TensorBoard events; "without" = the bare trainer. Checkpoints
are the same in both (none until the end). Rounds alternate; the best of each is compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch

from ganforge.config import load_config
from ganforge.run import run_dir_callbacks
from ganforge.train.callbacks import MetricsLog
from ganforge.train.trainer import Trainer


def timed(cfg, with_logging: bool) -> float:
    d = Path(tempfile.mkdtemp())
    try:
        trainer = Trainer(cfg, d if with_logging else None, [MetricsLog(d)] if with_logging else [])
        trainer.setup()
        if with_logging:
            trainer.callbacks += run_dir_callbacks(cfg, d, trainer.experiment, trainer.callbacks)
        t0 = time.perf_counter()
        trainer.fit()
        return time.perf_counter() - t0
    finally:
        shutil.rmtree(d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config("ring8", [f"train.steps={args.steps}", "train.progress=false", f"train.threads={args.threads}",
                                f"train.checkpoint_every={args.steps}", "train.guard.enabled=false"])
    bare, full = [], []
    for _ in range(args.rounds):
        bare.append(timed(cfg, False))
        full.append(timed(cfg, True))
    b, f = min(bare), min(full)
    print(json.dumps({"bench": "diagnostics_overhead", "recipe": "ring8", "steps": args.steps,
                      "threads": args.threads, "log_every": cfg.train.log_every, "bare_s": round(b, 2),
                      "with_diagnostics_and_logging_s": round(f, 2), "overhead": round(f / b - 1, 4),
                      "rounds": {"bare": [round(x, 2) for x in bare], "with": [round(x, 2) for x in full]}},
                     indent=2))


if __name__ == "__main__":
    main()
