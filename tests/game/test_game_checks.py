"""How the game's parts fit together, checked on the config before anything is built
(components.check_game): each refusal is a ConfigError naming the config path and the reason."""

from __future__ import annotations

import pytest

from ganforge.components import config_from_dict
from ganforge.errors import ConfigError
from ganforge.game import AUXILIARY, REGULARIZERS

IMAGES = {"data": {"name": "digits", "resolution": 8, "class_conditional": True},
          "model": {"generator": {"name": "dcgan", "ngf": 8}, "discriminator": {"name": "dcgan", "ndf": 8}}}
INFO_PRIOR = {"name": "infogan", "latent_dim": 16, "categorical": [10], "continuous": 2}


def refused(raw: dict, overrides=()) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw, list(overrides))
    return info.value


def with_game(base: dict, **game) -> dict:
    return {**base, "game": {**base.get("game", {}), **game}}


# -- point 5: clipping is one mechanism, and never beside an input-gradient penalty -------------------

@pytest.mark.parametrize("penalty", [n for n in REGULARIZERS.names() if REGULARIZERS.get(n).input_gradient])
def test_weight_clip_beside_an_input_gradient_penalty_is_refused(penalty):
    e = refused({"game": {"cost": {"name": "wasserstein"},
                          "regularizers": [{"name": penalty}, {"name": "weight_clip"}]}})
    assert e.path == "game.regularizers.1"
    msg = str(e)
    assert f"{penalty} (game.regularizers.0)" in msg and "Gulrajani" in msg and "keep one of them" in msg


def test_wasserstein_needs_something_that_keeps_the_critic_lipschitz():
    e = refused({"game": {"cost": {"name": "wasserstein"}}})
    assert e.path == "game.cost"
    assert "weight_clip" in str(e) and "gradient_penalty" in str(e) and "spectral_norm" in str(e)
    assert "before ganforge issue 11" in str(e)
    # r1 is not a Lipschitz constraint away from the data
    assert refused({"game": {"cost": {"name": "wasserstein"}, "regularizers": [{"name": "r1"}]}}).path == "game.cost"
    for game in ({"regularizers": [{"name": "weight_clip"}]}, {"regularizers": [{"name": "gradient_penalty"}]}):
        config_from_dict({"game": {"cost": {"name": "wasserstein"}, **game}})
    config_from_dict({"game": {"cost": {"name": "wasserstein"}},
                      "model": {"discriminator": {"name": "mlp", "spectral_norm": True}}})
    config_from_dict({**IMAGES, "game": {"cost": {"name": "wasserstein"}},
                      "model": {**IMAGES["model"], "discriminator": {"name": "resnet", "ndf": 8}}})  # SN by default


@pytest.mark.parametrize("clip", [None, 0.05])
def test_the_retired_weight_clip_parameter_names_its_replacement(clip):
    e = refused({"game": {"cost": {"name": "wasserstein", "weight_clip": clip}}})
    assert e.path == "game.cost.weight_clip"
    assert "no longer takes 'weight_clip'" in str(e) and "{name: weight_clip, clip: <value>}" in str(e)


# -- point 6: batch norm in D with an input-gradient penalty ------------------------------------------

@pytest.mark.parametrize("penalty", [n for n in REGULARIZERS.names() if REGULARIZERS.get(n).input_gradient])
def test_batch_norm_in_d_with_an_input_gradient_penalty_is_refused(penalty):
    raw = {**IMAGES, "model": {**IMAGES["model"], "discriminator": {"name": "dcgan", "ndf": 8, "batch_norm": True}}}
    config_from_dict(raw)  # batch norm alone is fine
    e = refused(with_game(raw, regularizers=[{"name": penalty}]))
    assert e.path == "model.discriminator.batch_norm"
    assert "each input separately" in str(e) and "Gulrajani" in str(e) and "batch_norm: false" in str(e)
    # spectral norm instead of batch norm is accepted with the same penalty
    ok = {**IMAGES, "model": {**IMAGES["model"], "discriminator": {"name": "dcgan", "ndf": 8, "spectral_norm": True}}}
    config_from_dict(with_game(ok, regularizers=[{"name": penalty}]))


# -- point 7: every head has its cost, every cost its head ------------------------------------------

def acgan_d(**extra):
    return {**IMAGES, "model": {**IMAGES["model"], "discriminator": {"name": "dcgan", "ndf": 8,
                                                                     "conditioning": "acgan", **extra}}}


def test_acgan_head_without_its_cost_is_refused():
    e = refused(acgan_d())
    assert e.path == "model.discriminator.conditioning"
    assert "'class_logits'" in str(e) and "no auxiliary cost trains" in str(e) and "{name: ac_gan}" in str(e)
    config_from_dict(with_game(acgan_d(), auxiliary=[{"name": "ac_gan"}]))


def test_acgan_cost_without_its_head_is_refused_at_config_time():
    for d in ({"name": "dcgan", "ndf": 8}, {"name": "dcgan", "ndf": 8, "conditioning": "projection"}):
        raw = {**IMAGES, "model": {**IMAGES["model"], "discriminator": d}}
        e = refused(with_game(raw, auxiliary=[{"name": "ac_gan"}]))
        assert e.path == "game.auxiliary.0"
        assert "'class_logits'" in str(e) and "conditioning: acgan" in str(e)
    e = refused({"game": {"auxiliary": [{"name": "ac_gan"}]}})  # the MLP D has no heads at all
    assert e.path == "game.auxiliary.0"


def info_d(**extra):
    return {**IMAGES, "data": {"name": "digits", "resolution": 8},
            "model": {**IMAGES["model"], "discriminator": {"name": "dcgan", "ndf": 8, **extra}}}


def test_infogan_q_head_without_its_cost_is_refused():
    for extra, path in (({"info_categorical": [10], "info_continuous": 2}, "info_categorical"),
                        ({"info_continuous": 2}, "info_continuous")):
        e = refused(with_game(info_d(**extra), prior=INFO_PRIOR))
        assert e.path == f"model.discriminator.{path}"
        assert "'code_logits'" in str(e) and "{name: infogan}" in str(e)


def test_infogan_cost_needs_its_head_its_prior_and_matching_codes():
    good = with_game(info_d(info_categorical=[10], info_continuous=2), prior=INFO_PRIOR,
                     auxiliary=[{"name": "infogan"}])
    config_from_dict(good)
    assert refused(with_game(info_d(), prior=INFO_PRIOR, auxiliary=[{"name": "infogan"}])).path == "game.auxiliary.0"
    e = refused(with_game(good, prior={"name": "gaussian", "latent_dim": 16}))
    assert e.path == "game.prior.name" and "'infogan' prior" in str(e)
    e = refused(with_game(info_d(info_categorical=[10], info_continuous=1), prior=INFO_PRIOR,
                          auxiliary=[{"name": "infogan"}]))
    assert e.path == "model.discriminator.info_categorical"
    assert "continuous 2" in str(e)


def test_every_auxiliary_cost_declares_its_heads():
    """A new auxiliary cost must say which heads it reads, so that the check above covers it."""
    for name in AUXILIARY.names():
        assert AUXILIARY.get(name).heads, name


def test_packaged_recipes_pass_the_game_checks():
    from ganforge.components import load_config
    from ganforge.config import recipe_names

    for name in recipe_names():
        load_config(name, ["data.path=/nowhere"] if "mnist" in name or name.startswith("tabular") else [])
