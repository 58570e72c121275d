"""Aten ops dispatched per training step, counted (not timed): a measure of the step's work that a
busy machine does not blur. Run it on two checkouts to compare their steps side by side.

    .venv/bin/python bench/step_ops.py --recipe ring8 --steps 20
    .venv/bin/python bench/step_ops.py --recipe digits-dcgan --steps 20

Counts every op the step dispatches (forward, backward, optimizer, EMA, statistics), over steps 11-20
of a run without a run directory (the first steps warm up lazily built lists), and prints JSON.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys

import torch
from torch.utils._python_dispatch import TorchDispatchMode

import ganforge
from ganforge.train.trainer import Trainer


class Count(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops[str(func.overloadpacket)] += 1
        return func(*args, **(kwargs or {}))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="ring8")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    warm = args.steps // 2
    cfg = ganforge.load_config(args.recipe, [f"train.steps={args.steps}", "train.progress=false",
                                             "train.log_every=1000000", *args.set])
    trainer = Trainer(cfg, None)
    s = trainer.setup()
    counter = Count()
    from ganforge.train import trainer as trainer_module

    n_stats = len(trainer_module._STATS)
    sums = torch.zeros(n_stats)
    for i in range(args.steps):
        if i == warm:
            counter.__enter__()
        trainer._set_lrs(s)
        trainer.train_step(s, sums, False)
        s.step += 1
    counter.__exit__(None, None, None)
    measured = args.steps - warm
    print(json.dumps({"bench": "step_ops", "recipe": args.recipe, "steps_counted": measured,
                      "ops_per_step": sum(counter.ops.values()) / measured,
                      "by_op": {k: v / measured for k, v in counter.ops.most_common()}}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
