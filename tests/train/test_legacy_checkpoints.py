"""Checkpoints written before issue 11 (commit d4f11a8) still load and resume, bit for bit.

tests/fixtures/legacy_runs/ holds two run directories as that code left them at their step-4
checkpoint (an MLP ring run, and a DCGAN run with batch norm on the built-in digits), and, per
machine (tests/conftest.py machine_key(): float results differ between CPUs), the SHA-256 of the
players' weights that d4f11a8 reaches when it resumes those checkpoints to step 8 (make_expected.py
beside them; the first machine's entry is of d4f11a8's uninterrupted 8 steps, which the checkpoints came
from). Resuming the fixture to step 8 with today's code must reach the same raw generator and
discriminator weights. (The EMA copy is not compared: its warm-up and batch-norm statistics changed
on purpose.) On a machine without an entry the test skips, naming the command that records one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.config import config_from_dict
from ganforge.run import load_generator, read_run_config, train

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_runs"
HOW_TO_MAKE = ("git worktree add --detach /tmp/d4f11a8 d4f11a8 && "
               "PYTHONPATH=/tmp/d4f11a8/src python tests/fixtures/legacy_runs/make_expected.py")



@pytest.mark.parametrize("name", ["ring", "digits"])
def test_legacy_checkpoint_resumes_bit_identical(name, tmp_path, one_thread, weights_digest, machine_reference):
    expected = json.loads((FIXTURES / "expected.json").read_text())
    want = machine_reference(expected, "legacy_runs digests", HOW_TO_MAKE)[name]
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    raw = read_run_config(run).to_dict()
    raw["train"]["steps"] = expected["steps"]
    state = train(config_from_dict(raw), run, progress=False)
    assert state.step == expected["steps"]
    assert weights_digest(state.generator.state_dict()) == want["generator"]
    assert weights_digest(state.discriminator.state_dict()) == want["discriminator"]


@pytest.mark.parametrize("name", ["ring", "digits"])
def test_legacy_run_loads_and_samples(name, tmp_path):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)
    G = load_generator(run)
    x = G.sample(5, seed=1)
    assert x.shape == (5, *G.sample_shape) and torch.isfinite(x).all()


def test_legacy_ema_generator_gets_statistics_of_its_own_weights(tmp_path):
    """A checkpoint written before issue 11 holds the raw G's batch-norm statistics in its EMA copy;
    load_generator measures the EMA weights' own (standing statistics), as new checkpoints hold."""
    from test_ema import own_batch_statistics

    run = tmp_path / "digits"
    shutil.copytree(FIXTURES / "digits", run)
    G = load_generator(run)
    for name, run_mean, run_var, mean, var in own_batch_statistics(G.generator, G.latent_dim):
        assert ((run_mean - mean).abs() / var.sqrt()).max().item() < 0.1, name
        ratio = run_var / var
        assert 1 / 1.25 < ratio.min().item() and ratio.max().item() < 1.25, name
