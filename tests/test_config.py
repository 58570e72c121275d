"""Config loading: every bad input is a ConfigError naming the path and what is allowed."""

from __future__ import annotations

import copy

import pytest

from ganforge.config import Config, config_from_dict, load_config, parse_override
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
    ({}, ["train.update=sequential"], "train.update", ["alternating", "simultaneous"]),
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
