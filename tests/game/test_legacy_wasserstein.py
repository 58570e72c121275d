"""Runs of the wasserstein cost written before issue 11, when the cost clipped D's weights at 0.01
by itself. Their config is refused with a message naming the fix (the weight_clip regularizer);
with the fix they load and resume bit-identical to the old code resuming them.

tests/game/fixtures/legacy_wgan: a ring WGAN run (``cost: {name: wasserstein}``, nothing else
constraining D) as b6bd8ea left it at step 4 (make_fixture.py says how it was made), and, per machine
(tests/conftest.py machine_key(): float results differ between CPUs), the digests of the players that
b6bd8ea reaches when it resumes that checkpoint to step 8 (make_expected.py; the first machine's entry
is of b6bd8ea's uninterrupted 8 steps, the run the checkpoint came from). On a machine without an
entry the resume test skips, naming the command that records one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ganforge.config import config_from_dict
from ganforge.errors import CheckpointError, ConfigError
from ganforge.run import load_generator, read_run_config, train

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "legacy_wgan"
HOW_TO_MAKE = ("git worktree add --detach /tmp/b6bd8ea b6bd8ea && "
               "PYTHONPATH=/tmp/b6bd8ea/src python tests/game/fixtures/legacy_wgan/make_expected.py")



def copy_run(tmp_path: Path, clip: dict | None) -> Path:
    run = tmp_path / "run"
    shutil.copytree(FIXTURE / "run", run)
    if clip is not None:  # the fix the error names
        raw = yaml.safe_load((run / "config.yaml").read_text())
        raw["game"]["regularizers"] = [clip] + raw["game"]["regularizers"]
        (run / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    return run


def test_a_legacy_wasserstein_run_is_refused_with_the_fix_named(tmp_path):
    run = copy_run(tmp_path, None)
    with pytest.raises(ConfigError) as info:
        read_run_config(run)
    assert info.value.path == "game.cost"
    assert "{name: weight_clip, clip: 0.01}" in str(info.value) and "before ganforge issue 11" in str(info.value)


@pytest.mark.parametrize("clip", [{"name": "weight_clip"}, {"name": "weight_clip", "clip": 0.01}])
def test_with_the_fix_a_legacy_wasserstein_run_resumes_bit_identical(clip, tmp_path, one_thread, weights_digest,
                                                                     machine_reference):
    expected = json.loads((FIXTURE / "expected.json").read_text())
    want = machine_reference(expected, "legacy_wgan digests", HOW_TO_MAKE)
    run = copy_run(tmp_path, clip)
    assert load_generator(run).sample(3, seed=0).shape == (3, 2)
    raw = read_run_config(run).to_dict()
    raw["train"]["steps"] = expected["steps"]
    state = train(config_from_dict(raw), run, progress=False)
    assert state.step == expected["steps"]
    assert weights_digest(state.generator.state_dict()) == want["generator"]
    assert weights_digest(state.discriminator.state_dict()) == want["discriminator"]
    assert max(float(p.detach().abs().max()) for p in state.discriminator.parameters()) <= 0.01


def test_another_clip_is_another_game(tmp_path):
    """The translation is exact: a clip the legacy run did not use does not resume from it."""
    run = copy_run(tmp_path, {"name": "weight_clip", "clip": 0.02})
    with pytest.raises(CheckpointError, match="different config"):
        load_generator(run)


def test_legacy_forms_of_a_config():
    from ganforge.config import _before_issue_11

    def game(cfg):
        return [(f["game"]["cost"], f["game"]["regularizers"]) for f in _before_issue_11(cfg.to_dict())]

    wgan_gp = config_from_dict({"game": {"cost": {"name": "wasserstein"}, "regularizers": [{"name": "gradient_penalty"}]}})
    assert game(wgan_gp) == [({"name": "wasserstein", "weight_clip": None}, [{"name": "gradient_penalty"}])]
    clip5 = config_from_dict({"game": {"cost": {"name": "wasserstein"}, "regularizers": [{"name": "weight_clip", "clip": 0.05}]}})
    assert game(clip5) == [({"name": "wasserstein", "weight_clip": 0.05}, [])]
    assert game(config_from_dict({})) == []  # non_saturating: nothing changed


def test_an_old_wgan_gp_run_that_also_clipped_is_not_taken_for_the_fixed_game():
    """Before issue 11, `wasserstein` + gradient_penalty also clipped at 0.01 (the defect): its
    checkpoints are another game than today's `wasserstein` + gradient_penalty and must not resume
    under it; a run that had turned the clipping off (`weight_clip: null`) played today's game."""
    from ganforge.config import Config

    base = {"game": {"cost": {"name": "wasserstein"}, "regularizers": [{"name": "gradient_penalty"}]}}
    today = config_from_dict(base)
    assert today.trajectory_hash(legacy=True) not in today.accepted_hashes()
    unclipped = Config.model_validate({"game": {"cost": {"name": "wasserstein", "weight_clip": None},
                                                "regularizers": [{"name": "gradient_penalty"}]}})
    assert unclipped.trajectory_hash(legacy=True) in today.accepted_hashes()
