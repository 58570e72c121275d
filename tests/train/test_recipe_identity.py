"""Today's recipes train to the same weights, bit for bit, as before the game was generalized (issue 12).

The reference digests were written by tests/train/fixtures/make_recipe_digests.py with the code before
issue 12 (commit c502ab9): 60 steps of every packaged recipe and of variants that exercise each branch
of the GAN's step (simultaneous updates with n_critic 2, WGAN-GP with n_critic 3, a relativistic cost
with R1 and R2, packing, bf16 autocast, AC-GAN and InfoGAN heads). One thread. Float results differ
between CPUs, so recipe_digests.json holds them per machine (tests/conftest.py machine_key()); on a
machine without an entry the cases skip, naming the command that records one with c502ab9's code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE / "fixtures"))

from make_recipe_digests import CASES, COMMIT, MNIST, train_digest  # noqa: E402

DIGESTS = HERE / "fixtures" / "recipe_digests.json"
HOW_TO_MAKE = (f"git worktree add --detach /tmp/{COMMIT} {COMMIT} && "
               f"PYTHONPATH=/tmp/{COMMIT}/src python tests/train/fixtures/make_recipe_digests.py")


@pytest.mark.parametrize("name", sorted(CASES))
def test_recipe_trains_to_the_weights_it_did_before_issue_12(name, one_thread, machine_reference):
    expected = machine_reference(json.loads(DIGESTS.read_text()), "recipe digests", HOW_TO_MAKE)
    if name.startswith("mnist") and not (MNIST / "t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("the shared MNIST test split is not on this machine")
    if name not in expected:
        pytest.skip(f"recipe digests: none recorded for {name} on this machine; make it with: {HOW_TO_MAKE} {name}")
    assert train_digest(name) == expected[name]
