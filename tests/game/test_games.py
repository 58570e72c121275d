"""Games as first-class objects (issue 12): the registry, the players a config may name, and the
spelling of ``train.update`` (a bare name, as before, or a component with parameters)."""

from __future__ import annotations

import pytest

from ganforge.components import build_experiment, config_from_dict, load_config
from ganforge.errors import ConfigError
from ganforge.game.games import GAMES, GanGame
from ganforge.train.updates import UPDATE_RULES


def test_default_game_is_the_gan_and_names_its_two_players():
    exp = build_experiment(config_from_dict({"train": {"batch_size": 8}}))
    assert isinstance(exp.game, GanGame) and "gan" in GAMES
    assert exp.game.players == ("generator", "discriminator")
    assert set(exp.players) == {"generator", "discriminator"}
    assert exp.players["generator"] is exp.generator and exp.players["discriminator"] is exp.discriminator


@pytest.mark.parametrize("recipe,overrides,hash_before_issue_12", [
    # trajectory hashes computed by the code before issue 12 (c502ab9), where train.update was a string
    ("ring8", ["train.update=simultaneous"], "bee8f1331c73135e"),
    ("digits-dcgan", [], "f56e588c8b6218ff"),
])
def test_configs_keep_the_trajectory_hash_they_had_before_issue_12(recipe, overrides, hash_before_issue_12):
    cfg = load_config(recipe, overrides)
    assert cfg.trajectory_hash() == hash_before_issue_12
    # the update rule written as a component without parameters is the same trajectory
    spelled = load_config(recipe, [f"train.update={{name: {cfg.train.update.name}}}"])
    assert spelled.trajectory_hash() == hash_before_issue_12


def test_an_update_rule_given_by_name_takes_a_parameter_override():
    # a recipe spells the rule as a bare name; an override of one of its parameters still applies
    raw = {"train": {"update": "alternating"}}
    with pytest.raises(ConfigError) as e:
        config_from_dict(raw, ["train.update.steps=3"])
    assert e.value.path == "train.update.steps"  # alternating has no ``steps``: named where it is
    cfg = config_from_dict(raw, ["train.update.name=simultaneous"])
    assert cfg.train.update.name == "simultaneous"


def test_update_rules_are_registered_by_their_field_names():
    assert {"alternating", "simultaneous"} <= set(UPDATE_RULES.names())


@pytest.mark.parametrize("override,path", [
    ("optim.encoder={lr: 1.0e-3}", "optim.encoder"),
    ("model.critic={name: mlp}", "model.critic"),
    ("game.name=chess", "game.name"),
])
def test_sections_must_match_the_game_players(override, path):
    with pytest.raises(ConfigError) as e:
        config_from_dict({}, [override])
    assert e.value.path == path
    assert "generator" in str(e.value) or "valid names" in str(e.value)


def test_a_player_section_of_another_game_is_built_for_its_player():
    # optim.<player> reaches the player's optimizer: the GAN's two, here with different rates
    cfg = config_from_dict({"optim": {"generator": {"lr": 1e-3}, "discriminator": {"lr": 3e-3}}})
    assert cfg.optim.player("generator").lr == 1e-3 and cfg.optim.player("discriminator").lr == 3e-3
