"""The run directory (ganforge.rundir): one owner of its files; runs readable without their data;
one trainer at a time; a fresh start never mixes with an earlier run's results."""

from __future__ import annotations

import ast
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from click.testing import CliRunner

import ganforge
from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.run import load_generator, train
from ganforge.rundir import RunDir, RunDirError, RunLock
from ganforge.train.callbacks import Callback

SRC = Path(__file__).resolve().parents[1] / "src"
RING = {
    "name": "ring-tiny",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [8]}, "discriminator": {"name": "mlp", "widths": [8]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 8, "batch_size": 8, "log_every": 4, "checkpoint_every": 4, "progress": False, "threads": 1},
}


def image_config(path: Path, labels: Path) -> dict:
    return {
        "name": "img-tiny",
        "data": {"name": "image_array", "path": str(path), "layout": "NHW", "labels_path": str(labels),
                 "class_conditional": True},
        "model": {"generator": {"name": "dcgan", "ngf": 4}, "discriminator": {"name": "dcgan", "ndf": 4}},
        "game": {"prior": {"name": "gaussian", "latent_dim": 8}},
        "train": {"steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2, "progress": False,
                  "threads": 1},
    }


def cli(*args) -> object:
    return CliRunner().invoke(main, [str(a) for a in args])


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(SRC) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# -- point 3: a run is readable without its training data ----------------------------------------

@pytest.fixture(scope="module")
def moved_image_run(tmp_path_factory):
    """A tiny conditional image run trained on a .npy in tmp, then moved, with its data deleted."""
    tmp = tmp_path_factory.mktemp("portable")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(24, 8, 8), dtype=np.uint8)
    labels = np.arange(24) % 3
    np.save(tmp / "images.npy", images)
    np.save(tmp / "labels.npy", labels)
    torch.set_num_threads(1)
    train(config_from_dict(image_config(tmp / "images.npy", tmp / "labels.npy")), tmp / "run")
    G = load_generator(tmp / "run")
    before = G.sample(6, seed=3, y=2)
    shutil.move(tmp / "run", tmp / "elsewhere")
    (tmp / "images.npy").unlink()
    (tmp / "labels.npy").unlink()
    return tmp, before, images, labels


def test_data_json_records_what_the_players_need(moved_image_run):
    tmp, _, images, labels = moved_image_run
    desc = json.loads((tmp / "elsewhere" / "data.json").read_text())
    assert desc["format"] == "ganforge-run"
    assert desc["shape"] == [1, 8, 8] and desc["n_classes"] == 3 and desc["value_range"] == [-1.0, 1.0]
    assert desc["dataset"] == "image_array" and desc["finite"] is True and desc["n_examples"] == 24
    assert len(desc["fingerprint"]) == 64  # sha256 hex of what the players see


def test_moved_run_without_data_loads_and_samples_the_same(moved_image_run):
    """Fails on b6bd8ea: load_generator rebuilt the dataset from the deleted .npy (DataError)."""
    tmp, before, _, _ = moved_image_run
    G = load_generator(tmp / "elsewhere")
    assert G.sample_shape == (1, 8, 8) and G.n_classes == 3 and G.value_range == (-1.0, 1.0)
    torch.testing.assert_close(G.sample(6, seed=3, y=2), before, rtol=0, atol=0)


def test_moved_run_without_data_cli_commands(moved_image_run):
    tmp, before, _, _ = moved_image_run
    run = tmp / "elsewhere"
    r = cli("sample", run, "--n", 6, "--seed", 3, "--class", 2, "--out", tmp / "s.npz")
    assert r.exit_code == 0, r.output
    with np.load(tmp / "s.npz") as f:
        np.testing.assert_array_equal(f["labels"], np.full(6, 2))
        assert f["samples"].shape == (6, 1, 8, 8)
    r = cli("interpolate", run, "--out", tmp / "i.png", "--steps", 3, "--paths", 2)
    assert r.exit_code == 0, r.output
    r = cli("report", run)
    assert r.exit_code == 0, r.output
    assert (run / "report.html").stat().st_size > 1000
    r = cli("diagnose", run, "--json")
    assert r.exit_code == 0, r.output
    assert isinstance(json.loads(r.output), list)


def test_eval_of_a_run_without_its_data_says_so_in_one_line(moved_image_run):
    tmp, _, _, _ = moved_image_run
    r = cli("eval", tmp / "elsewhere", "--n", 8)
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "training data" in lines[0] and "--real" in lines[0]


# -- B: building happens before training ---------------------------------------------------------

class Spy(Callback):
    def __init__(self):
        self.seen_at_resume: list[str] = []

    def on_resume(self, trainer, step):
        self.seen_at_resume = [type(cb).__name__ for cb in trainer.callbacks]


def test_every_callback_exists_before_the_trainer_sets_up(tmp_path, one_thread):
    """Fails on b6bd8ea: the run directory's callbacks were appended after set-up (and missed on_resume)."""
    cfg = config_from_dict(RING)
    train(cfg, tmp_path / "r")
    raw = cfg.to_dict()
    raw["train"]["steps"] = 12
    spy = Spy()
    train(config_from_dict(raw), tmp_path / "r", callbacks=[spy])
    assert {"MetricsLog", "SampleSnapshots", "DiagnosticsCallback"} <= set(spy.seen_at_resume)


# -- one owner: nobody else names the run's files, nothing below the faces imports run.py -----------

RUN_FILE_NAMES = {"config.yaml", "data.json", "metrics.jsonl", "eval.json", "report.html", "diagnostics.jsonl",
                  "events.jsonl", ".ganforge.lock", "checkpoints"}
FACES = {"ganforge/cli.py", "ganforge/__init__.py", "ganforge/demo.py", "ganforge/run.py", "ganforge/rundir.py",
         "ganforge/tabular/api.py", "ganforge/tabular/evaluation.py"}  # the table's Python API and its eval


def _code_strings(tree: ast.AST) -> set[str]:
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef))
            and n.body and isinstance(n.body[0], ast.Expr) and isinstance(n.body[0].value, ast.Constant)}
    return {n.value for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs}


def test_only_rundir_names_the_run_directory_files():
    """Fails on b6bd8ea: callbacks, diagnostics, report and evaluation joined these names themselves."""
    offenders = []
    for path in sorted((SRC / "ganforge").rglob("*.py")):
        if path.name == "rundir.py":
            continue
        found = _code_strings(ast.parse(path.read_text())) & RUN_FILE_NAMES
        if found:
            offenders.append(f"{path.relative_to(SRC)}: {sorted(found)}")
    assert not offenders, offenders


def _runtime_imports(tree: ast.AST) -> set[str]:
    """Modules imported outside ``if TYPE_CHECKING:`` blocks."""
    skip = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test):
            skip |= {id(m) for m in ast.walk(n)}
    out = set()
    for n in ast.walk(tree):
        if id(n) in skip:
            continue
        if isinstance(n, ast.ImportFrom) and n.module:
            out.add(n.module)
        elif isinstance(n, ast.Import):
            out |= {a.name for a in n.names}
    return out


def test_nothing_below_the_faces_imports_run_py():
    """Fails on b6bd8ea: diagnostics, report and sampling imported ganforge.run (run -> diagnostics ->
    report -> tensorboard -> run was a circle)."""
    importers = sorted(str(p.relative_to(SRC)) for p in (SRC / "ganforge").rglob("*.py")
                       if p.relative_to(SRC).as_posix() not in FACES and "ganforge.run" in _runtime_imports(ast.parse(p.read_text())))
    assert importers == []
    rundir_imports = {m for m in _runtime_imports(ast.parse((SRC / "ganforge" / "rundir.py").read_text()))
                      if m.startswith("ganforge")}
    # components: the recorded config is checked against the registries as `ganforge train` checked it
    # (a sideways import within the machinery layer; components imports nothing that reads a run)
    assert rundir_imports <= {"ganforge.errors", "ganforge.io", "ganforge.config", "ganforge.train.checkpoint",
                              "ganforge.data.base", "ganforge.components"}


def test_one_image_grid():
    """Fails on b6bd8ea: report.html had its own image_grid (min-max scaled, RGB) beside sampling's."""
    from ganforge.report import html
    from ganforge.sampling import image_grid

    assert html.image_grid is image_grid
    x = np.stack([np.full((1, 2, 2), v) for v in (-3.0, 3.0, np.nan)])
    g = image_grid(x, nrow=3, pad=0, rgb=True)
    assert g.shape == (2, 6, 3)
    assert g[0, 0, 0] == 0 and g[0, 2, 0] == 255 and g[0, 4, 0] == 128  # clipped, NaN in the middle


# -- metrics.jsonl through rundir ------------------------------------------------------------------

def test_metrics_append_read_truncate(tmp_path):
    run = RunDir(tmp_path)
    run.append_metrics({"step": 1, "a": 1.0}, {"step": 2, "a": 2.0})
    run.append_metrics({"step": 3, "a": 3.0})
    with run.metrics_path.open("a") as f:
        f.write('{"step": 4, "a":')  # a kill mid-write
    assert [r["step"] for r in run.read_metrics()] == [1, 2, 3]
    run.truncate_metrics(2)
    assert run.metrics_path.read_text() == '{"step": 1, "a": 1.0}\n{"step": 2, "a": 2.0}\n'


def test_snapshots_round_trip_and_skip_unreadable(tmp_path):
    run = RunDir(tmp_path)
    run.write_snapshot(20, {"samples": np.ones((3, 2), np.float32)})
    run.write_snapshot(10, {"samples": np.zeros((3, 2), np.float32)})
    run.snapshot_path(30).write_bytes(b"torn")
    assert [s for s, _ in run.snapshot_files()] == [10, 20, 30]
    got = run.read_snapshots()
    assert [s for s, _ in got] == [10, 20] and got[1][1]["samples"].sum() == 6


# -- the lock ----------------------------------------------------------------------------------------

HOLD = "import sys, time; from ganforge.rundir import RunLock; RunLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)"


def test_lock_names_its_holder_and_a_killed_holder_leaves_it_free(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, env=env())
    try:
        assert holder.stdout.readline().strip() == b"held"
        with pytest.raises(RunDirError, match=rf"pid {holder.pid} on host "):
            RunLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        lock = RunLock(tmp_path).acquire()  # the kernel released it with the process
        assert f"pid {os.getpid()} " in (tmp_path / ".ganforge.lock").read_text()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()


def test_two_trainers_on_one_run_directory(tmp_path):
    """Fails on b6bd8ea: both trained, and metrics.jsonl got every line twice."""
    long = {**RING, "train": {**RING["train"], "steps": 200000, "checkpoint_every": 100000, "log_every": 100}}
    (tmp_path / "long.yaml").write_text(yaml.safe_dump(long))
    (tmp_path / "other.yaml").write_text(yaml.safe_dump({**long, "train": {**long["train"], "seed": 9}}))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "ganforge", "train"]
    first = subprocess.Popen(cmd + [str(tmp_path / "long.yaml"), "--out", str(out)], env=env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and "pid" not in ((out / ".ganforge.lock").read_text()
                                                        if (out / ".ganforge.lock").exists() else ""):
            time.sleep(0.2)
        for config in ("long.yaml", "other.yaml"):
            second = subprocess.run(cmd + [str(tmp_path / config), "--out", str(out)], env=env(),
                                    capture_output=True, text=True, timeout=120)
            lines = [x for x in second.stderr.splitlines() if x.strip()]
            assert second.returncode == 2, second.stderr
            assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), second.stderr
            assert f"pid {first.pid}" in lines[0] and "another --out" in lines[0]
        assert first.poll() is None  # the first one trains on
        first.send_signal(signal.SIGTERM)  # stops at the end of a step, with a checkpoint
        first.wait(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    steps = [r["step"] for r in RunDir(out).read_metrics()]
    assert steps == sorted(set(steps))  # no line twice


# -- a fresh start in an old run directory ----------------------------------------------------------

def test_fresh_start_moves_the_earlier_runs_results_aside(tmp_path, one_thread, capsys):
    """Fails on b6bd8ea: metrics.jsonl was wiped and the old eval.json and samples stayed for the new report."""
    out = tmp_path / "run"
    train(config_from_dict(RING), out)
    (out / "eval.json").write_text('{"old": true}\n')
    old = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != ".ganforge.lock"}
    old_samples = sorted(p.name for p in (out / "samples").iterdir())
    shutil.rmtree(out / "checkpoints")
    raw = dict(RING, train={**RING["train"], "steps": 4, "seed": 3})
    train(config_from_dict(raw), out)
    aside = [p for p in out.iterdir() if p.name.startswith("superseded-")]
    assert len(aside) == 1
    assert {p.name: p.read_bytes() for p in aside[0].iterdir() if p.is_file()} == old
    assert sorted(p.name for p in (aside[0] / "samples").iterdir()) == old_samples
    assert not (out / "eval.json").exists()
    assert [r["step"] for r in RunDir(out).read_metrics()] == [4]
    assert [s for s, _ in RunDir(out).snapshot_files()] == [0, 1, 2, 3, 4]  # none of the old run's 5..8
    assert "moved to" in capsys.readouterr().err


# -- a damaged newest checkpoint --------------------------------------------------------------------

def test_damaged_newest_checkpoint_names_the_intact_one_and_resume_from_it_is_exact(tmp_path, one_thread):
    """Fails on b6bd8ea: the message named only the damaged file."""
    (tmp_path / "ring.yaml").write_text(yaml.safe_dump(RING))
    full = train(config_from_dict(RING), tmp_path / "full")
    raw = dict(RING, train={**RING["train"], "steps": 8, "checkpoint_every": 2, "keep_checkpoints": 5})
    # a run that reached step 6 with checkpoints 2, 4, 6, and whose newest file is damaged
    cut = dict(raw, train={**raw["train"], "steps": 6})
    train(config_from_dict(cut), tmp_path / "cut")
    newest = tmp_path / "cut" / "checkpoints" / "step_00000006.safetensors"
    newest.write_bytes(newest.read_bytes()[:100])
    before = newest.read_bytes()
    r = cli("train", tmp_path / "ring.yaml", "--out", tmp_path / "cut", "--set", "train.checkpoint_every=2",
            "--set", "train.keep_checkpoints=5")
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2 and len(lines) == 1, r.output
    assert "step_00000004.safetensors" in lines[0] and f"mv {newest} {newest}.damaged" in lines[0]
    assert newest.read_bytes() == before
    newest.rename(str(newest) + ".damaged")  # follow the hint
    resumed = train(config_from_dict(raw), tmp_path / "cut")
    for a, b in ((full.generator, resumed.generator), (full.discriminator, resumed.discriminator)):
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
            assert torch.equal(x, y), k


def test_legacy_run_without_data_json_still_loads(tmp_path):
    fixture = Path(__file__).resolve().parent / "fixtures" / "legacy_runs" / "ring"
    shutil.copytree(fixture, tmp_path / "ring")
    assert RunDir(tmp_path / "ring").is_run() and RunDir(tmp_path / "ring").read_data() is None
    G = ganforge.load_generator(tmp_path / "ring")
    assert G.sample(3, seed=0).shape == (3, 2)


def test_resuming_a_legacy_run_records_its_data_and_leftovers_are_not_foreign(tmp_path, one_thread):
    fixture = Path(__file__).resolve().parent / "fixtures" / "legacy_runs" / "ring"
    shutil.copytree(fixture, tmp_path / "ring")
    raw = RunDir(tmp_path / "ring").read_config().to_dict()
    raw["train"]["steps"] = 5
    train(config_from_dict(raw), tmp_path / "ring")
    desc = RunDir(tmp_path / "ring").read_data()
    assert desc["shape"] == [2] and desc["finite"] is False
    assert len(desc["fingerprint"]) == 64  # a distribution's: its registered name and parameters
    # a folder left with only what ganforge puts there besides a run is not foreign
    (tmp_path / "left").mkdir()
    (tmp_path / "left" / ".ganforge.lock").write_text("")
    (tmp_path / "left" / "superseded-20260101T000000").mkdir()
    (tmp_path / "left" / ".config.yaml.abc.tmp").write_text("")
    assert RunDir(tmp_path / "left").foreign_entries() == []
    (tmp_path / "left" / "notes.txt").write_text("mine")
    assert RunDir(tmp_path / "left").foreign_entries() == ["notes.txt"]


def test_eval_of_a_run_without_its_data_compares_with_other_real_images(moved_image_run, tmp_path):
    """--real names other real images: the run's own data is not needed, and the run is still an image run."""
    tmp, _, images, _ = moved_image_run
    real = tmp_path / "real.npy"
    np.save(real, images)
    r = cli("eval", tmp / "elsewhere", "--n", 8, "--real", real, "--metrics", "fid", "--features", "digits",
            "--out", tmp_path / "e.json")
    assert r.exit_code == 0, r.output
    assert "fid" in json.loads((tmp_path / "e.json").read_text())["metrics"]
