"""``ganforge <verb>``: parses arguments, loads the config, calls the library. No logic of its own.

Every error that ganforge raises on purpose (bad config, bad data, refused checkpoint) becomes one
line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import signal
import sys
import threading
from pathlib import Path

import click

from ganforge.errors import GanforgeError, TrainingStopped


class CLIError(GanforgeError):
    """A command-line argument is wrong."""


def _fail(message: str) -> None:
    click.echo(f"ganforge: error: {message}", err=True)
    sys.exit(2)


_INTERRUPTED = "ganforge: interrupted; resume with the same command"


class _Interrupts:
    """Ctrl-C in the CLI. The first SIGINT that reaches this handler raises KeyboardInterrupt as
    usual (files being written are cleaned up; a trainer with a run directory catches SIGINT itself,
    stops at the end of its step and hands a second one on to this handler). Any later one, and one
    during the exit, ends the process at once with one line and exit code 130, whatever was running
    (every file ganforge writes is replaced atomically: a write cut short leaves the old file)."""

    def __init__(self, hard: bool) -> None:
        # ``hard``: this process is the ganforge command itself, which may end with os._exit; in
        # a host process (click's CliRunner, a test) exits are SystemExit, as usual
        self.hard = hard
        self.calls = 0
        self.said = False

    def handler(self, signum: int, frame) -> None:
        self.calls += 1
        if self.calls == 1 and not self.said:
            raise KeyboardInterrupt
        self.exit(130, _INTERRUPTED)

    def exit(self, code: int, line: str) -> None:
        """Print ``line`` unless a line was already printed, and exit with ``code``. The command
        itself exits with os._exit after flushing its output: no Ctrl-C can then land in the
        interpreter's shutdown (a traceback), and a KeyboardInterrupt that passed through an
        extension's import cannot turn the exit status into "killed by SIGINT" (-2, not 130)."""
        if not self.said:
            self.said = True
            try:
                click.echo(line, err=True)
            except (OSError, KeyboardInterrupt):
                pass
        if not self.hard:
            sys.exit(code)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, KeyboardInterrupt):
                pass
        os._exit(code)


class _Group(click.Group):
    """Turns ganforge's own errors into one line and exit code 2, and Ctrl-C into one line and 130."""

    def invoke(self, ctx: click.Context):  # type: ignore[override]
        own = (threading.current_thread() is threading.main_thread()
               and signal.getsignal(signal.SIGINT) is signal.default_int_handler)
        interrupts = _Interrupts(hard=own and sys.stderr is sys.__stderr__)
        previous = signal.signal(signal.SIGINT, interrupts.handler) if own else None
        try:
            try:
                return super().invoke(ctx)
            except GanforgeError as exc:
                interrupts.said = True  # its own line follows; a Ctrl-C now adds none
                _fail(str(exc))
            except OSError as exc:  # a write refused by the system (read-only, full, gone): one line, not a traceback
                interrupts.said = True
                where = f"{exc.filename}: " if exc.filename else ""
                _fail(f"{where}{exc.strerror or exc}")
            except TrainingStopped as exc:
                interrupts.exit(128 + exc.signum, f"ganforge: {exc}; resume with the same command")
            except KeyboardInterrupt:
                interrupts.exit(130, _INTERRUPTED)
        except KeyboardInterrupt:  # a Ctrl-C while reporting the first outcome
            interrupts.exit(130, _INTERRUPTED)
        finally:
            if own:
                signal.signal(signal.SIGINT, previous)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ganforge")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="import MODULE first, so the components it registers can be named in configs "
                   "(repeatable; also env GANFORGE_PLUGINS=mod1,mod2 and the 'ganforge.plugins' entry points). "
                   "This runs the module's code, as any import does.")
def main(plugins: tuple[str, ...]) -> None:
    """ganforge: train, sample, evaluate and diagnose generative adversarial networks."""
    from ganforge.registry import load_plugins

    load_plugins(plugins)


@main.command()
@click.argument("config")
@click.option("--out", "out", required=True, type=click.Path(),
              help="run directory (~ is expanded; a relative path is relative to the current directory)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a config value, e.g. --set train.steps=2000 (repeatable; see `ganforge config --schema`)")
def train(config: str, out: str, overrides: tuple[str, ...]) -> None:
    """Train the GAN described by CONFIG (a YAML file or a packaged recipe name) into --out.

    If --out holds checkpoints of the same config, training resumes from the newest one. --out must
    be new, empty, or a ganforge run directory; one training process at a time may use it.
    """
    from ganforge.components import load_config
    from ganforge.run import train as run_train
    from ganforge.rundir import check_output_path

    check_output_path(out, "--out", directory=True)
    cfg = load_config(config, overrides)
    state = run_train(cfg, Path(out).expanduser())
    click.echo(json.dumps({"run": out, "step": state.step}))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--n", "n", type=click.IntRange(min=1), default=64, show_default=True, help="number of samples")
@click.option("--out", "out", required=True, type=click.Path(),
              help="FILE.npy | FILE.npz | grid.png | out_dir/ (one PNG per sample); a table run: FILE.csv | "
                   "FILE.parquet")
@click.option("--seed", type=int, default=0, show_default=True, help="same seed, same samples")
@click.option("--class", "class_label", type=int, default=None, help="class to generate (conditional runs)")
@click.option("--condition", "condition", default=None, metavar="COLUMN=VALUE",
              help="a table run: only rows with this value in this discrete column")
@click.option("--truncation", type=float, default=None,
              help="truncation trick: redraw latent values beyond this magnitude (a finite number > 0)")
@click.option("--raw", is_flag=True, help="use the raw generator instead of its EMA copy")
def sample(run_dir: str, n: int, out: str, seed: int, class_label: int | None, condition: str | None,
           truncation: float | None, raw: bool) -> None:
    """Draw N samples from a trained generator into a file, a PNG grid or a folder of PNGs (a table
    run: N rows into a CSV or Parquet file)."""
    from ganforge.run import load_generator
    from ganforge.rundir import check_output_path
    from ganforge.sampling import write_samples
    from ganforge.tabular.sampling import is_table_generator, parse_condition, write_table_samples

    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise CLIError(f"--truncation {truncation}: must be a finite number > 0 (latent values beyond it are redrawn)")
    parsed = None if condition is None else parse_condition(condition)
    G = load_generator(run_dir, ema=not raw)
    if is_table_generator(G):
        if class_label is not None or truncation is not None:
            raise CLIError("--class and --truncation are for image and vector generators; a table run takes "
                           "--condition COLUMN=VALUE")
        out = str(check_output_path(out, "--out"))
        click.echo(json.dumps(write_table_samples(G, n, out, seed=seed, condition=parsed)))
        return
    if parsed is not None:
        raise CLIError("--condition is for table runs; this run makes images or vectors (use --class)")
    is_dir = out.endswith("/") or Path(out).expanduser().is_dir()
    out = str(check_output_path(out, "--out", directory=is_dir)) + ("/" if out.endswith("/") else "")
    click.echo(json.dumps(write_samples(G, n, out, seed=seed, class_label=class_label, truncation=truncation)))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="PNG file")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True, help="points per path")
@click.option("--paths", type=click.IntRange(min=1), default=6, show_default=True, help="paths (rows)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--class", "class_label", type=int, default=None, help="class (conditional runs)")
def interpolate(run_dir: str, out: str, steps: int, paths: int, seed: int, class_label: int | None) -> None:
    """A grid of images along paths in latent space (spherical interpolation for Gaussian priors)."""
    from ganforge.run import load_generator
    from ganforge.rundir import check_output_path
    from ganforge.sampling import _scale, check_class, image_grid, interpolation_grid, save_png

    if Path(out).suffix.lower() != ".png":
        raise CLIError(f"--out {out}: interpolate writes a .png file")
    out = str(check_output_path(out))
    G = load_generator(run_dir)
    if len(G.sample_shape) != 3:
        raise CLIError(f"{run_dir}: interpolate needs an image generator; this one makes vectors")
    check_class(G, class_label)
    x = interpolation_grid(G, steps=steps, paths=paths, seed=seed, class_label=class_label)
    save_png(image_grid(x, nrow=steps), out, scale=_scale(x))
    click.echo(json.dumps({"out": out, "paths": paths, "steps": steps, "spherical": G.prior.spherical}))


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(), help="output directory")
@click.option("--steps", type=click.IntRange(min=2), default=10, show_default=True)
@click.option("--rows", type=click.IntRange(min=1), default=8, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def traverse(run_dir: str, out: str, steps: int, rows: int, seed: int) -> None:
    """InfoGAN: one grid per latent code, varying only that code along each row."""
    from ganforge.run import load_generator
    from ganforge.rundir import check_output_path
    from ganforge.sampling import _scale, image_grid, infogan_traversals, save_png

    out = str(check_output_path(out, "--out", directory=True))
    G = load_generator(run_dir)
    written = []
    for name, x in infogan_traversals(G, seed=seed, steps=steps, rows=rows).items():
        ncol = x.shape[0] // rows
        written.append(str(save_png(image_grid(x, nrow=ncol), Path(out) / f"traversal_{name}.png", scale=_scale(x))))
    click.echo(json.dumps({"out": written}))


@main.command("eval")
@click.argument("target", metavar="TARGET", type=click.Path())
@click.option("--metrics", "metrics", default=None, metavar="LIST",
              help="comma-separated: fid,kid,is,prdc,modes,memorization,stacked_modes [image default: fid,kid,prdc]")
@click.option("--n", "n", type=click.IntRange(min=2), default=None,
              help="generated samples [toy runs: 2500, image runs: 10000; sample files: all]")
@click.option("--seed", type=int, default=0, show_default=True,
              help="latents of the samples, order of the real images, KID subsets")
@click.option("--features", "features", default=None, metavar="NAME|FILE|MODULE:FACTORY",
              help="feature space: mnist, digits, inception, a .safetensors classifier of ours, or a Python "
                   "factory MODULE:FACTORY / FILE.py:FACTORY [default: the dataset's classifier, else inception]")
@click.option("--inception-weights", "inception_weights", default=None, type=click.Path(dir_okay=False),
              help="FID Inception-v3 weights file (.pth state dict or .safetensors) [env GANFORGE_INCEPTION_WEIGHTS]")
@click.option("--floor", is_flag=True,
              help="also measure real vs real (two disjoint halves of the real images): the best reachable values")
@click.option("--real", "real", default=None, metavar="DATASET|PATH",
              help="real images: a dataset name (digits, mnist, ...) or a folder / .npy / .npz of images "
                   "[runs: the run's own data]")
@click.option("--real-path", "real_path", default=None, type=click.Path(),
              help="the real dataset's path parameter, e.g. the MNIST IDX directory")
@click.option("--real-set", "real_set", multiple=True, metavar="KEY=VALUE",
              help="another real dataset parameter, e.g. --real-set split=test (repeatable)")
@click.option("--heldout", "heldout", default=None, metavar="DATASET|PATH",
              help="memorization: real images the generator never saw [default: half of the real images]")
@click.option("--heldout-set", "heldout_set", multiple=True, metavar="KEY=VALUE",
              help="a --heldout dataset parameter on top of the real data's, e.g. --heldout-set split=test")
@click.option("--n-real", "n_real", type=click.IntRange(min=4), default=None, help="use at most this many real images")
@click.option("--batch-size", "batch_size", type=click.IntRange(min=1), default=250, show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="torch CPU threads [torch's default]; 1 is often fastest for the small classifiers")
@click.option("--quantize/--no-quantize", "quantize", default=True, show_default=True,
              help="round images (generated and real) to 8 bits before the feature network, as pytorch-fid, "
                   "clean-fid and stylegan2-ada do")
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False),
              help="JSON file to write [TARGET/eval.json, or NAME.eval.json beside an array]")
def evaluate(target: str, metrics: str | None, n: int | None, seed: int, features: str | None,
             inception_weights: str | None, floor: bool, real: str | None, real_path: str | None,
             real_set: tuple[str, ...], heldout: str | None, heldout_set: tuple[str, ...], n_real: int | None,
             batch_size: int, device: str, threads: int | None, quantize: bool, out: str | None) -> None:
    """Measure TARGET; print JSON and write it to TARGET/eval.json, with the protocol recorded.

    \b
    Protocol (as pytorch-fid / clean-fid / stylegan2-ada): images are rounded to 8 bits
    before the feature network (--no-quantize to skip); precision / recall use k = 3
    (Kynkäänniemi et al. 2019), density / coverage k = 5 (Naeem et al. 2020).

    \b
    TARGET is one of:
      a run directory   toy data: the exact protocol (modes, W1, D*); images: metrics in a
                        feature space between --n samples of the EMA generator and the run's data
      a folder of PNG/JPEG samples, or a .npy / .npz array of samples (uint8 0..255, or floats
                        in [-1, 1] as `ganforge sample` writes; NCHW, NHWC or NHW): needs --real
      a table run       fidelity (column shapes, pair trends, coverage) against its training rows;
                        with --real TEST.csv also utility (TSTR) and privacy (DCR, NNDR, membership
                        inference) against those held-out rows

    \b
    Examples:
      ganforge eval runs/mnist --metrics fid,kid,prdc,modes --floor --real-path data/mnist
      ganforge eval samples.npy --real mnist --real-path data/mnist --real-set split=test
      ganforge eval samples/ --real real_images/ --features inception --inception-weights pt_inception.pth
    """
    from ganforge.config import parse_override
    from ganforge.evaluation.targets import (
        EvalRequest,
        check_output,
        default_output,
        evaluate_target,
        write_report,
    )
    from ganforge.run import load_run, read_run_config

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    from ganforge.tabular.evaluation import evaluate_table_run, is_table_run

    if is_table_run(target):  # fidelity, utility and privacy of a synthetic table
        if metrics or features or floor or heldout or real_path or real_set:
            raise CLIError("a table run takes --real TEST.csv (held-out real rows), --n, --seed and --out; "
                           "--metrics, --features, --floor, --heldout, --real-path and --real-set are for images")
        click.echo(json.dumps(evaluate_table_run(target, real=real, n=n, seed=seed, out=out), indent=1))
        return
    params = dict(parse_override(text) for text in real_set)
    if real_path is not None:
        params["path"] = real_path
    names = None if metrics is None else tuple(m.strip() for m in metrics.split(",") if m.strip())
    req = EvalRequest(metrics=names, n=n, seed=seed, features=features, floor=floor, real=real, real_params=params,
                      heldout=heldout, heldout_params=dict(parse_override(t) for t in heldout_set), n_real=n_real,
                      inception_weights=inception_weights, batch_size=batch_size, device=device, quantize=quantize)
    dest = out if out is not None else default_output(Path(target))
    if out is not None or Path(target).exists():
        check_output(dest)  # before the work, not after it
    report = evaluate_target(target, req, read_config=read_run_config, load_run=load_run)
    write_report(dest, report)
    click.echo(json.dumps(report, indent=2))


@main.group()
def features() -> None:
    """Feature extractors for evaluation: list them, train our classifiers."""


@features.command("list")
def features_list() -> None:
    """The registered feature extractors."""
    from ganforge.evaluation.features.extractors import EXTRACTORS

    names = EXTRACTORS.names()
    width = max(map(len, names)) + 2
    for name in names:
        doc = (EXTRACTORS.get(name).__doc__ or "").strip().splitlines()[0]
        click.echo(f"{name:{width}s}{doc}")


@features.command("train")
@click.argument("name", type=click.Choice(["digits", "mnist"]))
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="FILE.safetensors")
@click.option("--data-path", "data_path", default=None, type=click.Path(),
              help="mnist: the directory holding t10k-images-idx3-ubyte[.gz] and t10k-labels-idx1-ubyte[.gz]")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--epochs", type=click.IntRange(min=1), default=None, help="[the recipe's: digits 60, mnist 12]")
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True,
              help="torch threads; the weights are bit-identical for the same seed and thread count")
@click.option("--quiet", is_flag=True, help="no per-epoch lines on stderr")
def features_train(name: str, out: str, data_path: str | None, seed: int, epochs: int | None, threads: int,
                   quiet: bool) -> None:
    """Train our NAME classifier reproducibly and write it as a .safetensors file; print JSON.

    \b
    digits: scikit-learn's 8x8 digits, train on the first 1,437, hold out the last 360
    mnist:  the 10,000 MNIST test images, train on the first 8,000, hold out the last 2,000
    """
    from ganforge.evaluation.features.training import train_and_save

    log = None if quiet else (lambda line: click.echo(line, err=True))
    result = train_and_save(name, out, data_path=data_path, seed=seed, epochs=epochs, threads=threads, log=log)
    click.echo(json.dumps(result, indent=2))


@main.command()
@click.option("--out", "out", default="runs/demo", show_default=True, type=click.Path(file_okay=False))
@click.option("--quick", is_flag=True, help="a much shorter run (seconds), for a smoke test")
def demo(out: str, quick: bool) -> None:
    """The README's main job: the 1-D Gaussian game of the GAN tutorial's Figure 4, then ring and grid."""
    from ganforge.demo import run_demo

    run_demo(Path(out), quick=quick, echo=click.echo)


@main.command("config")
@click.argument("config", required=False)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a config value (repeatable)")
@click.option("--schema", "show_schema", is_flag=True,
              help="print every config section and field (type, default, meaning) and every registered "
                   "component with its parameters")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True,
              help="--schema output format (markdown is docs/config-reference.md)")
def config_command(config: str | None, overrides: tuple[str, ...], show_schema: bool, fmt: str) -> None:
    """Print the config schema (--schema), or CONFIG fully resolved (defaults filled in, overrides
    applied, every component checked) as YAML."""
    if show_schema == (config is not None):
        raise CLIError("give either CONFIG (to print it resolved) or --schema")
    if show_schema:
        from ganforge import schema

        click.echo({"text": schema.to_text, "json": schema.to_json, "markdown": schema.to_markdown}[fmt]())
        return
    from ganforge.components import load_config

    click.echo(load_config(config, overrides).to_yaml(), nl=False)


@main.command()
def recipes() -> None:
    """List the packaged recipes (usable as CONFIG by name)."""
    from ganforge.config import RECIPES_DIR, recipe_names

    for name in recipe_names():
        first = (RECIPES_DIR / f"{name}.yaml").read_text().splitlines()[0].lstrip("# ")
        click.echo(f"{name:16s} {first}")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="print the events as a JSON list")
def diagnose(run_dir: str, as_json: bool) -> None:
    """Say what happened to RUN_DIR's game (finished or still running): D overpowering G, mode
    collapse, oscillation, non-finite values; one line per warning, with evidence and what to try."""
    from ganforge.diagnostics.analysis import diagnose as diagnose_run

    events = diagnose_run(run_dir)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in events], indent=2))
    elif not events:
        click.echo(f"{run_dir}: no warnings")
    for e in [] if as_json else events:
        click.echo(e.line())


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--step", type=click.IntRange(min=0), default=None,
              help="analyze the checkpoint of this step [the newest; train.keep_checkpoints are kept]")
@click.option("--batch-size", "batch_size", type=click.IntRange(min=1), default=None,
              help="examples (and latents) in the fixed batch [train.batch_size]")
@click.option("--seed", type=int, default=0, show_default=True, help="draws the fixed batch")
@click.option("--method", type=click.Choice(["auto", "dense", "iterative"]), default="auto", show_default=True,
              help="dense: every eigenvalue of the full game Jacobian; iterative: Lanczos / Arnoldi on "
                   "Hessian- and Jacobian-vector products; auto: dense below 64 parameters")
@click.option("--dense-max", "dense_max", type=click.IntRange(min=1), default=4096, show_default=True,
              help="the most parameters a dense check may have")
@click.option("--eigenvalues", "n_eigenvalues", type=click.IntRange(min=1), default=6, show_default=True,
              help="iterative: eigenvalues of largest modulus, and least stable ones, to compute")
@click.option("--tol", "arpack_tol", type=click.FloatRange(min=0), default=1e-10, show_default=True,
              help="iterative: the relative accuracy asked of Lanczos / Arnoldi (ARPACK); larger is faster")
@click.option("--gradient-tol", "gradient_tol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="a player's gradient norm at most this counts as zero")
@click.option("--path-points", "path_points", type=click.IntRange(min=0), default=25, show_default=True,
              help="points of the path angle from the initialization (alpha in [0, 1.2]; 0: none)")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads [torch's default]")
@click.option("--json", "as_json", is_flag=True, help="print analysis.json's content instead of the summary")
def analyze(run_dir: str, step: int | None, batch_size: int | None, seed: int, method: str, dense_max: int,
            n_eigenvalues: int, arpack_tol: float, gradient_tol: float, path_points: int, threads: int | None,
            as_json: bool) -> None:
    """Is RUN_DIR's checkpoint an equilibrium of its game? Print a verdict and write RUN_DIR/analysis.json.

    \b
    On one fixed batch, in float64: each player's gradient norm; the extreme eigenvalues of each
    player's own Hessian (a local Nash equilibrium needs each positive semi-definite, Ratliff et
    al.); the eigenvalues of the game Jacobian with the largest modulus and the least stable one
    (eigenvalues of -d xi/d theta, the Jacobian of the gradient flow, as Mescheder et al. 2018:
    simultaneous gradient steps are locally stable when every real part is < 0; the Dirac-GAN has
    +-i/2); and the path angle of Berard et al. 2020 from the initialization to the checkpoint.
    """
    from ganforge.diagnostics.equilibrium_run import summary_lines
    from ganforge.run import analyze_run
    from ganforge.rundir import RunDir, check_output_path

    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    run = RunDir(run_dir).require()
    check_output_path(run.analysis_path, "the analysis file")  # before the work, not after it
    record = analyze_run(run_dir, step, batch_size=batch_size, seed=seed, path_points=path_points, method=method,
                         dense_max=dense_max, n_eigenvalues=n_eigenvalues, gradient_tol=gradient_tol,
                         arpack_tol=arpack_tol)
    if as_json:
        click.echo(json.dumps(record, indent=2))
    else:
        for line in summary_lines(record):
            click.echo(line)
        click.echo(f"written: {run.analysis_path}")


def _html_out(out: str) -> None:
    if Path(out).suffix.lower() not in (".html", ".htm"):
        raise CLIError(f"--out {out}: unsupported file type {Path(out).suffix!r}; allowed: .html")


@main.command()
@click.argument("run_dir", type=click.Path())
@click.option("--out", "out", default=None, type=click.Path(dir_okay=False),
              help="output file (default RUN_DIR/report.html)")
def report(run_dir: str, out: str | None) -> None:
    """Write a self-contained HTML report of RUN_DIR (curves, diagnostics, samples, metrics, config)."""
    from ganforge.report.html import write_report
    from ganforge.rundir import RunDir, check_output_path

    if out is not None:
        _html_out(out)
        out = str(check_output_path(out))
    else:
        check_output_path(RunDir(run_dir).report_path)
    click.echo(json.dumps({"report": str(write_report(run_dir, out))}))


@main.command()
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False), help="output file (.html)")
def compare(run_dirs: tuple[str, ...], out: str) -> None:
    """Write one self-contained HTML page overlaying the curves of several runs."""
    from ganforge.report.html import write_comparison

    _html_out(out)
    click.echo(json.dumps({"comparison": str(write_comparison(list(run_dirs), out))}))


if __name__ == "__main__":  # pragma: no cover
    main()
