"""The corpus of bad inputs: configs, data files, CLI arguments, checkpoints.

Each case runs the real command line and must give exactly one line on stderr that starts with
"ganforge: error:" and says what is wrong, exit code 2, no traceback, and leave every file that was
already there byte-identical (a trained run directory is part of every case's world).
"""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

import ganforge
from ganforge.cli import main

TINY = {
    "name": "tiny",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [8]}, "discriminator": {"name": "mlp", "widths": [8]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 4, "batch_size": 8, "log_every": 2, "checkpoint_every": 2, "progress": False, "threads": 1},
}
# "Billion laughs": 9 ** 9 strings once every alias is followed (a few hundred bytes of YAML); on
# b6bd8ea the error message about train.steps formatted all of them.
BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{k}: &{k} [{', '.join(['*' + p] * 9)}]\n" for p, k in zip("abcdefgh", "bcdefghi", strict=True)) + "train: {steps: *i}\n"
IMG = ["--set", "model.generator={name: dcgan, ngf: 4}", "--set", "model.discriminator={name: dcgan, ndf: 4}",
       "--set", "data.resolution=8"]


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    w = tmp_path_factory.mktemp("world")
    (w / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    ganforge.train(ganforge.config_from_dict(TINY), w / "run")
    # data files, good and bad
    np.save(w / "ok.npy", np.zeros((4, 8, 8), np.uint8))
    np.save(w / "bad_shape.npy", np.zeros((4, 8), np.uint8))
    np.save(w / "bad_dtype.npy", np.array(["a", "b"]))
    np.save(w / "nan.npy", np.full((4, 8, 8), np.nan, np.float32))
    np.savez(w / "nolabels.npz", images=np.zeros((4, 8, 8), np.uint8))
    np.savez(w / "nan_labels.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, np.nan, 2]))
    (w / "empty").mkdir()
    (w / "corrupt").mkdir()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(w / "corrupt" / "good.png")
    (w / "corrupt" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 20)
    (w / "idx").mkdir()
    with gzip.open(w / "idx" / "images.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x00000999, 2, 8, 8) + bytes(128))
    with gzip.open(w / "idx" / "short.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x00000803, 5, 8, 8) + bytes(100))
    (w / "notyaml.yaml").write_text("train: [1, 2\n")
    (w / "list.yaml").write_text("- 1\n- 2\n")
    (w / "pickle.safetensors").write_bytes(b"\x80\x04\x95")
    # hostile configs
    (w / "deep.yaml").write_text("train: " + "[" * 50_000 + "]" * 50_000 + "\n")
    (w / "deep.json").write_text('{"a": ' * 50_000 + "1" + "}" * 50_000)
    (w / "random.yaml").write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (w / "latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (w / "utf16.yaml").write_bytes(yaml.safe_dump(TINY).encode("utf-16-le"))  # no byte-order mark
    (w / "bomb.yaml").write_text(BILLION_LAUGHS)
    (w / "recursive.yaml").write_text("train: &t {steps: *t}\n")
    return w


def snapshot(w: Path) -> dict[str, bytes]:
    return {str(p.relative_to(w)): p.read_bytes() for p in sorted(w.rglob("*")) if p.is_file()}


def T(w: Path, *extra: str) -> list[str]:
    return ["train", str(w / "tiny.yaml"), "--out", str(w / "new"), *extra]


CASES = {
    # configs
    "unknown cost": (lambda w: T(w, "--set", "game.cost.name=wgan"), "game.cost.name"),
    "unknown generator": (lambda w: T(w, "--set", "model.generator.name=gpt"), "model.generator.name"),
    "unknown discriminator": (lambda w: T(w, "--set", "model.discriminator.name=x"), "model.discriminator.name"),
    "unknown dataset": (lambda w: T(w, "--set", "data.name=imagenet"), "data.name"),
    "unknown regularizer": (lambda w: T(w, "--set", "game.regularizers=[{name: r3}]"), "game.regularizers.0.name"),
    "unknown prior": (lambda w: T(w, "--set", "game.prior.name=cauchy"), "game.prior.name"),
    "unknown top-level key": (lambda w: T(w, "--set", "trian.steps=3"), "trian"),
    "unknown game": (lambda w: T(w, "--set", "game.name=chess"), "game.name"),
    "optimizer for a player the game lacks": (lambda w: T(w, "--set", "optim.encoder={lr: 1.0e-3}"),
                                              "optim.encoder"),
    "model for a player the game lacks": (lambda w: T(w, "--set", "model.critic={name: mlp}"), "model.critic"),
    "unknown update rule": (lambda w: T(w, "--set", "train.update=sometimes"), "train.update.name"),
    "unknown update parameter": (lambda w: T(w, "--set", "train.update.speed=2"), "train.update.speed"),
    "unknown component key": (lambda w: T(w, "--set", "model.generator.widht=3"), "model.generator.widht"),
    "wrong type": (lambda w: T(w, "--set", "train.steps=ten"), "train.steps"),
    "negative lr": (lambda w: T(w, "--set", "optim.discriminator.lr=-1e-3"), "optim.discriminator.lr"),
    "n_critic 0": (lambda w: T(w, "--set", "train.n_critic=0"), "train.n_critic"),
    "latent dim 0": (lambda w: T(w, "--set", "game.prior.latent_dim=0"), "game.prior.latent_dim"),
    "batch too large for memory": (lambda w: T(w, "--set", "train.batch_size=9000000000"), "train.batch_size"),
    "bad beta": (lambda w: T(w, "--set", "optim.generator.betas=[1.5, 0.9]"), "optim.generator.betas"),
    "bad ema decay": (lambda w: T(w, "--set", "train.ema_decay=1.0"), "train.ema_decay"),
    "bad schedule": (lambda w: T(w, "--set", "optim.generator.schedule=exp"), "optim.generator.schedule"),
    "bad device": (lambda w: T(w, "--set", "train.device=quantum"), "train.device"),
    "override without =": (lambda w: T(w, "--set", "train.steps"), "key=value"),
    "invalid yaml": (lambda w: ["train", str(w / "notyaml.yaml"), "--out", str(w / "new")], "notyaml.yaml"),
    "yaml not a mapping": (lambda w: ["train", str(w / "list.yaml"), "--out", str(w / "new")], "mapping"),
    "missing config file": (lambda w: ["train", str(w / "nope.yaml"), "--out", str(w / "new")], "not found"),
    "config nested 50,000 levels": (lambda w: ["train", str(w / "deep.yaml"), "--out", str(w / "new")],
                                    "nested deeper than"),
    "json config nested 50,000 levels": (lambda w: ["train", str(w / "deep.json"), "--out", str(w / "new")],
                                         "nested deeper than"),
    "override nested 50,000 levels": (lambda w: T(w, "--set", "train.seed=" + "[" * 50_000 + "]" * 50_000),
                                      "nested deeper than"),
    "config of random bytes": (lambda w: ["train", str(w / "random.yaml"), "--out", str(w / "new")], "random.yaml"),
    "config not utf-8": (lambda w: ["train", str(w / "latin1.yaml"), "--out", str(w / "new")], "not UTF-8"),
    "config utf-16 without bom": (lambda w: ["train", str(w / "utf16.yaml"), "--out", str(w / "new")], "UTF-16"),
    "yaml alias bomb": (lambda w: ["train", str(w / "bomb.yaml"), "--out", str(w / "new")], "aliases"),
    "yaml recursive alias": (lambda w: ["train", str(w / "recursive.yaml"), "--out", str(w / "new")],
                             "recursive alias"),
    "config is a directory": (lambda w: ["train", str(w / "empty"), "--out", str(w / "new")], "directory"),
    "seed 2**70": (lambda w: T(w, "--set", f"train.seed={2 ** 70}"), "train.seed"),
    "negative seed": (lambda w: T(w, "--set", "train.seed=-1"), "train.seed"),
    "mlp width 10**9": (lambda w: T(w, "--set", "model.generator.widths=[1000000000]"), "model.generator"),
    "discriminator width 10**9": (lambda w: T(w, "--set", "model.discriminator.widths=[1000000000]"),
                                  "model.discriminator"),
    "latent_dim 10**9": (lambda w: T(w, "--set", "game.prior.latent_dim=1000000000"), "latent_dim 1000000000"),
    "unknown plugin module": (lambda w: ["--plugin", "no_such_ganforge_plugin", "recipes"],
                              "no_such_ganforge_plugin"),
    "other config in run dir": (lambda w: ["train", str(w / "tiny.yaml"), "--out", str(w / "run"), "--set",
                                           "train.seed=7"], "different config"),
    # data files
    "array wrong shape": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'bad_shape.npy'}, "
                                               "layout: NHW}", *IMG), "bad_shape.npy"),
    "array wrong dtype": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'bad_dtype.npy'}, "
                                               "layout: NHW}", *IMG), "bad_dtype.npy"),
    "array with NaN": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'nan.npy'}, "
                                            "layout: NHW}", *IMG), "nan.npy"),
    "npz label NaN": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'nan_labels.npz'}, "
                                           "layout: NHW, labels_key: labels, class_conditional: true}", *IMG),
                      "nan_labels.npz"),
    "npz missing labels key": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'nolabels.npz'}, "
                                                    "layout: NHW, labels_key: labels}", *IMG), "nolabels.npz"),
    "missing array file": (lambda w: T(w, "--set", f"data={{name: image_array, path: {w / 'none.npy'}, "
                                                "layout: NHW}", *IMG), "none.npy"),
    "empty image folder": (lambda w: T(w, "--set", f"data={{name: image_folder, path: {w / 'empty'}}}", *IMG),
                           "empty"),
    "corrupt image": (lambda w: T(w, "--set", f"data={{name: image_folder, path: {w / 'corrupt'}}}", *IMG),
                      "broken.png"),
    "idx bad magic": (lambda w: T(w, "--set", f"data={{name: idx, images: {w / 'idx' / 'images.gz'}}}", *IMG),
                      "images.gz"),
    "idx truncated": (lambda w: T(w, "--set", f"data={{name: idx, images: {w / 'idx' / 'short.gz'}}}", *IMG),
                      "short.gz"),
    "mnist dir without files": (lambda w: T(w, "--set", f"data={{name: mnist, path: {w / 'empty'}}}", *IMG),
                                "empty"),
    # CLI arguments
    "sample: unknown run dir": (lambda w: ["sample", str(w / "nowhere"), "--out", str(w / "s.npy")],
                                "not a ganforge run directory"),
    "sample: bad suffix": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.csv")], ".npy"),
    "sample: png of vectors": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.png")], "image generator"),
    "sample: class on unconditional": (lambda w: ["sample", str(w / "run"), "--out", str(w / "s.npy"), "--class",
                                                  "1"], "not conditional"),
    "interpolate vectors": (lambda w: ["interpolate", str(w / "run"), "--out", str(w / "i.png")], "image"),
    "traverse without codes": (lambda w: ["traverse", str(w / "run"), "--out", str(w / "t")], "infogan"),
    "eval: not a run": (lambda w: ["eval", str(w / "empty")], "empty"),
    "report: not a run": (lambda w: ["report", str(w / "empty")], "empty"),
    # checkpoints
    "pickle given as checkpoint": (lambda w: ["sample", str(w / "run_pickle"), "--out", str(w / "s.npy")],
                                   "checkpoint"),
}


def _prepare(world: Path, name: str) -> None:
    if name == "pickle given as checkpoint" and not (world / "run_pickle").exists():
        shutil.copytree(world / "run", world / "run_pickle")
        last = sorted((world / "run_pickle" / "checkpoints").iterdir())[-1]
        last.write_bytes(b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00\x8c\x08builtins\x94.")


def test_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input(world, name):
    _prepare(world, name)
    args, expected = CASES[name]
    before = snapshot(world)
    try:
        r = CliRunner().invoke(main, args(world))
    finally:  # a case that wrongly succeeds must not leave a run behind for the next cases
        shutil.rmtree(world / "new", ignore_errors=True)
    lines = [x for x in r.output.splitlines() if x.strip()]
    assert r.exit_code == 2, r.output
    assert len(lines) == 1 and lines[0].startswith("ganforge: error:"), r.output
    assert expected in lines[0], lines[0]
    assert "Traceback" not in r.output
    assert snapshot(world) == before


@pytest.mark.parametrize("name", ["yaml alias bomb", "config nested 50,000 levels", "json config nested 50,000 levels",
                                  "mlp width 10**9", "discriminator width 10**9", "latent_dim 10**9"])
def test_hostile_configs_are_refused_at_once(world, name):
    """Refused before anything is expanded or allocated: well under a second (the alias bomb took
    minutes on b6bd8ea, the deep configs raised RecursionError, the wide players tried to allocate)."""
    import time

    args, _ = CASES[name]
    t0 = time.perf_counter()
    r = CliRunner().invoke(main, args(world))
    assert r.exit_code == 2, r.output
    assert time.perf_counter() - t0 < 1.0
