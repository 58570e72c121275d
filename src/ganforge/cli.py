"""``ganforge <verb>``: parses arguments, loads the config, calls the library. No logic of its own.

Every error that ganforge raises on purpose (bad config, bad data, refused checkpoint) becomes one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np

from ganforge.errors import GanforgeError


class CLIError(GanforgeError):
    """A command-line argument is wrong."""


def _fail(message: str) -> None:
    click.echo(f"ganforge: error: {message}", err=True)
    sys.exit(2)


class _Group(click.Group):
    """Turns ganforge's own errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        try:
            return super().invoke(ctx)
        except GanforgeError as exc:
            _fail(str(exc))
        except KeyboardInterrupt:
            click.echo("ganforge: interrupted; resume with the same command", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganforge")
def main() -> None:
    """ganforge: train, sample, evaluate and diagnose generative adversarial networks."""


@main.command()
@click.argument("config")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False), help="run directory")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a config value, e.g. --set train.steps=2000 (repeatable)")
def train(config: str, out: str, overrides: tuple[str, ...]) -> None:
    """Train the GAN described by CONFIG (a YAML file or a packaged recipe name) into --out.

    If --out holds checkpoints of the same config, training resumes from the newest one.
    """
    from ganforge.config import load_config
    from ganforge.run import train as run_train

    cfg = load_config(config, overrides)
    state = run_train(cfg, out)
    click.echo(json.dumps({"run": out, "step": state.step}))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=1), default=1000, show_default=True, help="number of samples")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="output file (.npy)")
@click.option("--seed", type=int, default=0, show_default=True, help="same seed, same samples")
@click.option("--raw", is_flag=True, help="use the raw generator instead of its EMA copy")
def sample(run_dir: str, n: int, out: str, seed: int, raw: bool) -> None:
    """Draw N samples from a trained generator into an .npy file."""
    from ganforge.io import atomic_open
    from ganforge.run import load_generator

    if Path(out).suffix != ".npy":
        raise CLIError(f"--out {out}: unsupported file type {Path(out).suffix!r}; allowed: .npy")
    G = load_generator(run_dir, ema=not raw)
    x = G.sample(n, seed=seed).numpy()
    with atomic_open(out, "wb") as f:
        np.save(f, x, allow_pickle=False)
    click.echo(json.dumps({"out": out, "shape": list(x.shape), "seed": seed}))


@main.command("eval")
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=2), default=2500, show_default=True, help="number of samples")
@click.option("--seed", type=int, default=0, show_default=True)
def evaluate(run_dir: str, n: int, seed: int) -> None:
    """Measure a trained run; print JSON and write RUN_DIR/eval.json."""
    from ganforge.evaluation import evaluate_run
    from ganforge.io import write_json_atomic
    from ganforge.run import load_run

    report = evaluate_run(load_run(run_dir), n=n, seed=seed)
    write_json_atomic(Path(run_dir) / "eval.json", report)
    click.echo(json.dumps(report, indent=2))


@main.command()
@click.option("--out", "out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="a much shorter run (seconds), for a smoke test")
def demo(out: str, quick: bool) -> None:
    """The README's main job: the 1-D Gaussian game of the GAN tutorial's Figure 4, then ring and grid."""
    from ganforge.demo import run_demo

    run_demo(Path(out), quick=quick, echo=click.echo)


@main.command()
def recipes() -> None:
    """List the packaged recipes (usable as CONFIG by name)."""
    from ganforge.config import RECIPES_DIR, recipe_names

    for name in recipe_names():
        first = (RECIPES_DIR / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
        click.echo(f"{name:16s} {first}")


if __name__ == "__main__":  # pragma: no cover
    main()
