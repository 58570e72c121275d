"""Config loading: every bad input is a ConfigError naming the path and what is allowed."""

from __future__ import annotations

import copy

import pytest

from ganforge.components import config_from_dict, load_config
from ganforge.config import Config, parse_override
from ganforge.errors import ConfigError
from ganforge.game import COSTS
from ganforge.models import GENERATORS


def error(raw, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, list(overrides))
    return info.value


def test_defaults_and_a_valid_dict():
    cfg = config_from_dict({"game": {"cost": {"name": "wasserstein"}, "regularizers": [{"name": "weight_clip", "clip": 0.05}]},
                            "train": {"steps": 10, "batch_size": 8},
                            "model": {"discriminator": {"name": "mlp", "widths": [4, 4]}}})
    assert isinstance(cfg, Config)
    assert cfg.game.cost.name == "wasserstein" and cfg.game.regularizers[0].params == {"clip": 0.05}
    assert cfg.train.steps == 10 and cfg.train.batch_size == 8 and cfg.train.n_critic == 1
    assert cfg.model.discriminator.params == {"widths": [4, 4]}
    assert cfg.model.generator.name == "mlp" and cfg.model.generator.params == {}
    assert config_from_dict(None) == Config()


def test_unknown_cost_lists_the_valid_names():
    e = error({"game": {"cost": {"name": "wassersteinn"}}})
    assert e.path == "game.cost.name"
    msg = str(e)
    assert "game.cost.name" in msg and "wassersteinn" in msg
    for name in COSTS.names():
        assert name in msg


def test_unknown_model_name():
    e = error({"model": {"generator": {"name": "stylegan9"}}})
    assert e.path == "model.generator.name"
    assert "stylegan9" in str(e)
    assert all(n in str(e) for n in GENERATORS.names())


@pytest.mark.parametrize("raw,path,allowed", [
    ({"trian": {"steps": 3}}, "trian", ["data", "game", "model", "optim", "train"]),
    ({"train": {"stpes": 3}}, "train.stpes", ["steps", "batch_size", "n_critic", "seed"]),
    ({"optim": {"generator": {"learning_rate": 1e-3}}}, "optim.generator.learning_rate", ["lr", "betas"]),
    ({"model": {"generator": {"name": "mlp", "widht": [8]}}}, "model.generator.widht", ["widths", "activation"]),
    ({"game": {"regularizers": [{"name": "r1", "gama": 1.0}]}}, "game.regularizers.0.gama", ["gamma"]),
])
def test_unknown_keys_name_the_path_and_the_allowed_keys(raw, path, allowed):
    e = error(raw)
    assert e.path == path
    msg = str(e)
    assert msg.startswith(f"config {path}:")
    assert "unknown key" in msg
    for key in allowed:
        assert key in msg


def test_component_context_is_not_a_user_key():
    """latent_dim / out_shape / n_classes of a player come from the prior and data, not the user."""
    e = error({"model": {"generator": {"name": "mlp", "latent_dim": 4}}})
    assert e.path == "model.generator.latent_dim" and "unknown key" in str(e)


@pytest.mark.parametrize("raw,overrides,path,words", [
    ({"train": {"steps": "abc"}}, [], "train.steps", ["integer", "'abc'"]),
    ({}, ["train.steps=abc"], "train.steps", ["integer", "'abc'"]),
    ({}, ["optim.generator.lr=-1"], "optim.generator.lr", ["greater than 0", "-1"]),
    ({}, ["train.n_critic=0"], "train.n_critic", ["greater than 0"]),
    ({}, ["game.prior.latent_dim=0"], "game.prior.latent_dim", ["greater than 0"]),
    ({"game": {"prior": {"name": "gaussian", "latent_dim": 0}}}, [], "game.prior.latent_dim", ["greater than 0"]),
    ({}, ["optim.discriminator.name=adagrad"], "optim.discriminator.name", ["adam", "sgd", "adagrad"]),
    ({}, ["train.update=sequential"], "train.update.name", ["alternating", "simultaneous"]),
    ({}, ["model.discriminator.pack=0"], "model.discriminator.pack", ["greater than 0"]),
    ({}, ["game.regularizers=[{name: weight_clip, clip: -0.1}]"], "game.regularizers.0.clip", ["greater than 0"]),
])
def test_bad_values_name_the_path_and_the_constraint(raw, overrides, path, words):
    e = error(raw, overrides)
    assert e.path == path
    assert str(e).startswith(f"config {path}:")
    for w in words:
        assert w in str(e)


def test_bad_overrides():
    e = error({}, ["train.steps"])
    assert "key=value" in str(e)
    e = error({}, ["train.steps.max=3"])
    assert e.path == "train.steps" and "not a section" in str(e)
    e = error({}, ["game.regularizers.0.gamma=1"])
    assert e.path.startswith("game.regularizers") and "no list item" in str(e)
    e = error([1, 2])
    assert "mapping" in str(e)


def test_override_values_are_parsed():
    assert parse_override("train.steps=100") == ("train.steps", 100)
    assert parse_override("train.threads=null") == ("train.threads", None)
    assert parse_override("model.generator.widths=[8, 16]") == ("model.generator.widths", [8, 16])
    assert parse_override("name=a=b") == ("name", "a=b")
    cfg = config_from_dict({}, ["train.steps=100", "optim.generator.lr=0.001", "train.progress=false",
                                "model.generator.widths=[8, 16]", "name=run1"])
    assert cfg.train.steps == 100 and isinstance(cfg.train.steps, int)
    assert cfg.optim.generator.lr == 0.001 and cfg.optim.discriminator.lr == 2e-4
    assert cfg.train.progress is False
    assert cfg.model.generator.params == {"widths": [8, 16]}
    assert cfg.name == "run1"


def test_override_into_a_missing_section_fills_its_defaults():
    cfg = config_from_dict({}, ["model.discriminator.pack=4"])
    assert cfg.model.discriminator.name == "mlp"
    assert cfg.model.discriminator.params == {"pack": 4}
    assert cfg.model.generator.name == "mlp"
    cfg = config_from_dict({"model": {"generator": {"name": "mlp", "widths": [4]}}}, ["model.discriminator.pack=4"])
    assert cfg.model.generator.params == {"widths": [4]}
    assert cfg.model.discriminator.name == "mlp" and cfg.model.discriminator.params == {"pack": 4}
    # the default prior keeps its latent_dim when only another of its keys is overridden
    cfg = config_from_dict({"train": {"steps": 3}}, ["game.prior.name=uniform"])
    assert cfg.game.prior.name == "uniform" and cfg.game.prior.params == {"latent_dim": 2}
    assert cfg.game.cost.name == "non_saturating" and cfg.train.steps == 3


def test_overrides_do_not_modify_the_input_and_win_over_it():
    raw = {"train": {"steps": 7, "seed": 1}}
    before = copy.deepcopy(raw)
    cfg = config_from_dict(raw, ["train.steps=9", "game.regularizers=[{name: r1, gamma: 2.0}]"])
    assert raw == before
    assert cfg.train.steps == 9 and cfg.train.seed == 1
    assert [(r.name, r.params) for r in cfg.game.regularizers] == [("r1", {"gamma": 2.0})]
    cfg = config_from_dict({"game": {"regularizers": [{"name": "r1"}]}}, ["game.regularizers.0.gamma=3"])
    assert cfg.game.regularizers[0].params == {"gamma": 3}


def test_trajectory_hash():
    base = config_from_dict({})
    h = base.trajectory_hash()
    assert h == config_from_dict({}).trajectory_hash()
    for ov in ("train.steps=17", "train.progress=false", "train.log_every=3", "train.checkpoint_every=5",
               "train.keep_checkpoints=9", "train.device=cpu", "train.threads=3"):
        assert config_from_dict({}, [ov]).trajectory_hash() == h, ov
    for ov in ("train.seed=1", "train.precision=bf16", "train.n_critic=2", "optim.generator.lr=0.001", "game.cost.name=hinge",
               "model.discriminator.pack=2", "train.batch_size=128"):
        assert config_from_dict({}, [ov]).trajectory_hash() != h, ov


def test_yaml_round_trip_and_file_errors(tmp_path):
    cfg = config_from_dict({"game": {"cost": {"name": "least_squares", "a": -1.0}}}, ["train.steps=12"])
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    again = load_config(p)
    assert again == cfg and again.trajectory_hash() == cfg.trajectory_hash()
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  steps: [1,\n")
    with pytest.raises(ConfigError, match="bad.yaml"):
        load_config(bad)
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  n_critic: 0\n")
    with pytest.raises(ConfigError, match=r"train\.n_critic.*typo\.yaml"):
        load_config(typo)
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


# -- the trajectory hash: what a resume must match -------------------------------------------------

# Configs hashed by the code before issue 11 (b6bd8ea): (its trajectory_hash(), and with
# execution_free=False). Checkpoints of that code carry one of these; they must stay accepted.
LEGACY_IMAGES = {"name": "legacy-images",
                 "data": {"name": "image_array", "path": "/data/x.npy", "layout": "NHW", "resolution": 8},
                 "model": {"generator": {"name": "dcgan", "ngf": 8}, "discriminator": {"name": "dcgan", "ndf": 8}},
                 "train": {"device": "cpu", "threads": 2, "seed": 3, "steps": 10}}
LEGACY_HASHES = [({}, ("5a2d236ca914eebf", "5a2d236ca914eebf")),
                 (LEGACY_IMAGES, ("4d15d4c165d28733", "8e6cef645e6cf9a7"))]


@pytest.mark.parametrize("raw,hashes", LEGACY_HASHES)
def test_hashes_of_the_code_before_issue_11_are_still_accepted(raw, hashes):
    cfg = config_from_dict(raw)
    assert cfg.trajectory_hash(legacy=True) == hashes[0]
    assert cfg.trajectory_hash(legacy=True, execution_free=False) == hashes[1]
    assert set(hashes) <= set(cfg.accepted_hashes())
    assert cfg.accepted_hashes()[0] == cfg.trajectory_hash()


def test_the_legacy_fixture_checkpoints_carry_an_accepted_hash():
    from pathlib import Path

    from safetensors import safe_open

    from ganforge.run import read_run_config

    root = Path(__file__).parent / "fixtures" / "legacy_runs"
    for name in ("ring", "digits"):
        cfg = read_run_config(root / name)
        (ckpt,) = (root / name / "checkpoints").iterdir()
        with safe_open(str(ckpt), "pt") as f:
            written = f.metadata()["config_hash"]
        assert written in cfg.accepted_hashes()
        assert written != cfg.trajectory_hash()  # today's rule differs (the name is no longer hashed)


def test_name_and_data_location_are_not_part_of_the_trajectory():
    base = config_from_dict(LEGACY_IMAGES)
    h = base.trajectory_hash()
    renamed = config_from_dict(LEGACY_IMAGES, ["name=another-name"])
    moved = config_from_dict(LEGACY_IMAGES, ["data.path=/elsewhere/x.npy"])
    assert renamed.trajectory_hash() == h and moved.trajectory_hash() == h
    # ... but they were under the earlier rule, whose hashes stay distinct for old checkpoints
    assert renamed.trajectory_hash(legacy=True) != base.trajectory_hash(legacy=True)
    for key in ("images", "labels", "labels_path"):
        a = config_from_dict({"data": {"name": "idx", "images": "/a/i.gz", "labels": "/a/l.gz"}})
        b = config_from_dict({"data": {"name": "idx", "images": "/b/i.gz", "labels": "/b/l.gz"}})
        assert a.trajectory_hash() == b.trajectory_hash(), key
    for ov in ("data.resolution=16", "data.layout=NCHW", "train.seed=4", "model.generator.ngf=16"):
        assert config_from_dict(LEGACY_IMAGES, [ov]).trajectory_hash() != h, ov


def test_fields_added_later_are_hashed_only_off_their_default():
    """A field or section added to the schema with a default keeps every existing run's hash."""
    from pydantic import Field

    from ganforge.config import Section, TrainConfig

    class NewTrain(TrainConfig):
        new_knob: int = 3
        new_switch: bool = True

    class NewSection(Section):
        quantize: bool = True
        k: int = Field(3, gt=0)

    class NewConfig(Config):
        train: NewTrain = NewTrain()
        evaluation: NewSection = NewSection()

    for raw in ({}, LEGACY_IMAGES):
        old, new = config_from_dict(raw), NewConfig.model_validate(config_from_dict(raw).to_dict())
        assert new.trajectory_hash() == old.trajectory_hash()
        assert new.trajectory_hash(legacy=True) == old.trajectory_hash(legacy=True)
        assert set(old.accepted_hashes()) == set(new.accepted_hashes())
        for change in ({"train": {"new_knob": 4}}, {"train": {"new_switch": False}}, {"evaluation": {"k": 5}}):
            d = new.to_dict()
            for section, values in change.items():
                d[section].update(values)
            assert NewConfig.model_validate(d).trajectory_hash() != old.trajectory_hash(), change


def _tiny_image_run(root, name, path, steps):
    import numpy as np

    import ganforge

    raw = {"name": name, "data": {"name": "image_array", "path": str(path), "layout": "NHW"},
           "model": {"generator": {"name": "dcgan", "ngf": 4}, "discriminator": {"name": "dcgan", "ndf": 4}},
           "train": {"steps": steps, "batch_size": 4, "checkpoint_every": 2, "log_every": 1, "progress": False,
                     "threads": 1}}
    if not path.exists():
        np.save(path, (np.arange(8 * 8 * 8) % 251).astype(np.uint8).reshape(8, 8, 8))
    return ganforge.train(ganforge.config_from_dict(raw), root / "run")


def test_a_renamed_run_whose_data_moved_resumes(tmp_path, one_thread):
    """Renaming a run and correcting its moved data path continue it instead of refusing it
    (fails on b6bd8ea: 'holds checkpoints of a different config')."""
    import json
    import shutil

    first = tmp_path / "a.npy"
    assert _tiny_image_run(tmp_path, "before", first, 2).step == 2
    moved = tmp_path / "moved" / "a.npy"
    moved.parent.mkdir()
    shutil.move(first, moved)
    state = _tiny_image_run(tmp_path, "after", moved, 4)
    assert state.step == 4
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert steps == sorted(set(steps)) and steps[-1] == 4 and 3 in steps  # continued, not restarted


def test_a_run_whose_data_changed_is_refused(tmp_path, one_thread):
    """The data's location is not hashed, its content is: one changed pixel refuses the resume."""
    import numpy as np

    import ganforge
    from ganforge.run import RunDirError

    data = tmp_path / "a.npy"
    _tiny_image_run(tmp_path, "run", data, 2)
    images = np.load(data)
    images[0, 0, 0] ^= 1
    np.save(data, images)
    raw = {"name": "run", "data": {"name": "image_array", "path": str(data), "layout": "NHW"},
           "model": {"generator": {"name": "dcgan", "ngf": 4}, "discriminator": {"name": "dcgan", "ndf": 4}},
           "train": {"steps": 4, "batch_size": 4, "progress": False, "threads": 1}}
    with pytest.raises(RunDirError, match="other data"):
        ganforge.train(ganforge.config_from_dict(raw), tmp_path / "run")


def test_a_changed_trajectory_field_is_still_refused(tmp_path, one_thread):
    import ganforge
    from ganforge.run import RunDirError

    data = tmp_path / "a.npy"
    _tiny_image_run(tmp_path, "run", data, 2)
    raw = {"name": "run", "data": {"name": "image_array", "path": str(data), "layout": "NHW"},
           "model": {"generator": {"name": "dcgan", "ngf": 4}, "discriminator": {"name": "dcgan", "ndf": 4}},
           "train": {"steps": 4, "batch_size": 4, "progress": False, "threads": 1, "seed": 1}}
    with pytest.raises(RunDirError, match=r"different config.*train\.seed"):
        ganforge.train(ganforge.config_from_dict(raw), tmp_path / "run")


# -- config.py is the schema only ---------------------------------------------------------------

def test_config_module_imports_no_registry_and_nothing_above_it():
    """The circle config <-> components is gone: config.py imports only errors and the diagnostics'
    settings (a schema class), and checks no component by itself."""
    import ast
    from pathlib import Path

    import ganforge.config as schema

    tree = ast.parse(Path(schema.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert {m for m in imported if m and m.startswith("ganforge")} == {"ganforge.errors",
                                                                       "ganforge.diagnostics.settings"}
    # the schema alone accepts an unknown cost; the build layer (and the public API) refuses it
    raw = {"game": {"cost": {"name": "wassersteinn"}}}
    assert schema.config_from_dict(raw).game.cost.name == "wassersteinn"
    import ganforge
    from ganforge.components import build_experiment

    for check in (lambda: ganforge.config_from_dict(raw), lambda: build_experiment(schema.config_from_dict(raw))):
        with pytest.raises(ConfigError, match="game.cost.name"):
            check()


# -- reading files ------------------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-16-be", "utf-32"])
def test_a_config_with_a_byte_order_mark_is_decoded(tmp_path, encoding):
    import codecs

    text = "# café\ntrain:\n  steps: 7\n"
    data = text.encode(encoding)
    if encoding == "utf-16-be":
        data = codecs.BOM_UTF16_BE + data
    p = tmp_path / "c.yaml"
    p.write_bytes(data)
    assert load_config(p).train.steps == 7


def test_aliases_within_the_limit_still_work(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("model:\n  generator: &player {name: mlp, widths: [8, 8]}\n  discriminator: *player\n")
    cfg = load_config(p)
    assert cfg.model.discriminator.params == {"widths": [8, 8]} == cfg.model.generator.params


def test_tilde_in_the_config_path_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "c.yaml").write_text("train: {steps: 5}\n")
    assert load_config("~/c.yaml").train.steps == 5


# -- memory -------------------------------------------------------------------------------------

def test_training_state_is_part_of_the_memory_check(monkeypatch):
    import torch
    from torch import nn

    from ganforge.train import memory

    G, D = nn.Linear(3, 5), nn.Linear(5, 1)  # 20 and 6 parameters, no buffers
    # gradients + 2 optimizer moments for both players, plus G's EMA copy, 4 bytes each
    assert memory.training_state_bytes(G, D) == 4 * (3 * 26 + 20) == 392

    class Player(nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x, y=None):
            return self.net(x)

    g, d = Player(G), Player(D)
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: 391)
    with pytest.raises(ConfigError, match=r"model\.generator: training the players \(20 \+ 6 parameters\)"):
        memory.check_batch_fits(1, g, d, 3, 0, torch.device("cpu"))
    # activations per example: outputs of G (5) and D (1); x 6 (backward, real and fake) x 4 bytes
    monkeypatch.setattr(memory, "available_memory_bytes", lambda device: 392 + 10 * 6 * 6 * 4 - 1)
    with pytest.raises(ConfigError, match=r"train\.batch_size: 10 needs"):
        memory.check_batch_fits(10, g, d, 3, 0, torch.device("cpu"))
    assert memory.check_batch_fits(9, g, d, 3, 0, torch.device("cpu")) == 392 + 9 * 6 * 6 * 4


def test_players_are_counted_on_the_meta_device_without_touching_the_weights(monkeypatch):
    """The pre-build check builds nothing real and leaves the seeded initialization as it was."""
    import torch

    from ganforge import components

    cfg = config_from_dict({"model": {"generator": {"name": "mlp", "widths": [16]},
                                      "discriminator": {"name": "mlp", "widths": [16]}}, "train": {"seed": 3}})
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    exp = components.build_experiment(cfg)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(3)
    G = components.build_generator(cfg, exp.dataset.shape, exp.dataset.n_classes, exp.prior)
    for a, b in zip(G.state_dict().values(), exp.generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    need = sum(t.numel() * 4 for m in (exp.generator, exp.discriminator) for t in [*m.parameters(), *m.buffers()])
    assert components.check_players_fit(cfg, exp.dataset, exp.prior) == need
    monkeypatch.setattr(components, "available_memory_bytes", lambda device: 2 * need - 2)
    with pytest.raises(ConfigError, match="more than half"):
        components.check_players_fit(cfg, exp.dataset, exp.prior)


def test_tilde_in_train_out_is_expanded(tmp_path, monkeypatch, one_thread):
    """`--out ~/run` (quoted, or --out=~/run, which shells leave alone) trains into $HOME/run, not
    into a directory named '~' (fails on b6bd8ea)."""
    import yaml
    from click.testing import CliRunner

    from ganforge.cli import main

    raw = {"model": {"generator": {"name": "mlp", "widths": [8]}, "discriminator": {"name": "mlp", "widths": [8]}},
           "train": {"steps": 2, "batch_size": 8, "progress": False, "threads": 1, "checkpoint_every": 2}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    r = CliRunner().invoke(main, ["train", "~/c.yaml", "--out=~/run"], env={"HOME": str(tmp_path)})
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "config.yaml").exists() and not (work / "~").exists()


def test_a_player_that_cannot_be_built_on_meta_is_still_built(monkeypatch):
    """The pre-build estimate is skipped (not fatal) for a player whose constructor reads values."""
    import torch

    from ganforge import components
    from ganforge.models import GENERATORS, mlp

    monkeypatch.setattr(GENERATORS, "_entries", dict(GENERATORS._entries))
    monkeypatch.setattr(GENERATORS, "_models", dict(GENERATORS._models))

    @GENERATORS.register("reads_values")
    class ReadsValues(mlp.MLPGenerator):
        def __init__(self, latent_dim, out_shape, n_classes=0):
            super().__init__(latent_dim=latent_dim, out_shape=out_shape, n_classes=n_classes, widths=[4])
            self.scale = float(torch.ones(1).sum().item())  # fails on the meta device

    cfg = config_from_dict({"model": {"generator": {"name": "reads_values"}}})
    exp = components.build_experiment(cfg)
    assert exp.generator.scale == 1.0
    assert components.check_players_fit(cfg, exp.dataset, exp.prior) == 0


def test_earlier_spellings_of_the_same_trajectory_are_accepted(monkeypatch):
    """A config spelled differently before (e.g. a parameter moved to another component) keeps the
    hashes of its earlier spelling, under every rule."""
    old = config_from_dict(LEGACY_IMAGES, ["train.seed=9"])  # stands for the earlier spelling
    new = config_from_dict(LEGACY_IMAGES)
    assert old.trajectory_hash(legacy=True) not in new.accepted_hashes()
    monkeypatch.setattr(Config, "earlier_spellings", lambda self: [old])
    accepted = new.accepted_hashes()
    assert accepted[0] == new.trajectory_hash()
    for legacy in (False, True):
        for free in (True, False):
            assert old.trajectory_hash(execution_free=free, legacy=legacy) in accepted
