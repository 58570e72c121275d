"""Distributed data-parallel training with torchrun (2 processes, gloo on CPU)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
import yaml

from ganforge.train.checkpoint import list_checkpoints, load_checkpoint

CFG = {
    "name": "ddp-ring",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [32, 32]},
              "discriminator": {"name": "mlp", "widths": [32, 32]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 4}, "regularizers": [{"name": "r1", "gamma": 1.0}]},
    "train": {"steps": 20, "batch_size": 64, "log_every": 10, "checkpoint_every": 10, "progress": False,
              "threads": 1, "seed": 1},
}
# the equivalence test's tolerance: 2 processes average two half-batch gradients, 1 process takes
# the mean over the whole batch, which differs only in floating-point summation order
TOL = 1e-5


def torchrun(n: int, cfg_path, out, *sets: str) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}",
           "-m", "ganforge", "train", str(cfg_path), "--out", str(out)]
    for s in sets:
        cmd += ["--set", s]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]


def final_state(out):
    return load_checkpoint(list_checkpoints(out / "checkpoints")[-1][1])


def max_diff(a, b) -> float:
    return max(float((a[part][k].double() - b[part][k].double()).abs().max())
               for part in ("generator", "discriminator") for k in a[part])


@pytest.fixture(scope="module")
def cfg_path(tmp_path_factory):
    p = tmp_path_factory.mktemp("cfg") / "ddp.yaml"
    p.write_text(yaml.safe_dump(CFG))
    return p


def test_two_processes_follow_the_one_process_trajectory(cfg_path, tmp_path):
    torchrun(1, cfg_path, tmp_path / "one")
    torchrun(2, cfg_path, tmp_path / "two")
    a, b = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    assert a["step"] == b["step"] == 20
    assert max_diff(a, b) < TOL
    # and the weights did move: the comparison is not between two untouched initializations
    init = load_checkpoint(list_checkpoints(tmp_path / "one" / "checkpoints")[0][1])
    assert max_diff(a, init) > 1e-2 if init["step"] == 0 else True
    # only rank 0 wrote: one metrics line per log step
    lines = (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()
    assert len([x for x in lines if '"event"' not in x]) == 2


# -- 1 process = N processes for every regularizer and auxiliary cost ----------------------------------
# One setup per registered name: a regularizer or auxiliary cost registered later fails
# test_every_game_term_has_a_distributed_setup until it gets one here, and is then covered.
_IMAGES = {"data": {"name": "digits", "resolution": 8},
           "model": {"generator": {"name": "mlp", "widths": [32], "output": "tanh"},  # no batch norm in G
                     "discriminator": {"name": "dcgan", "ndf": 8}}}
_INFO_PRIOR = {"name": "infogan", "latent_dim": 16, "categorical": [10], "continuous": 2}


def _ring(**game) -> dict:
    return {**CFG, "game": {"prior": {"name": "gaussian", "latent_dim": 4}, **game}}


def _images(data: dict, d: dict, **game) -> dict:
    return {**CFG, **_IMAGES, "data": {**_IMAGES["data"], **data},
            "model": {**_IMAGES["model"], "discriminator": {**_IMAGES["model"]["discriminator"], **d}},
            "game": {"prior": {"name": "gaussian", "latent_dim": 8}, **game}, "train": {**CFG["train"], "batch_size": 16}}


GAME_TERMS = {
    "regularizer:gradient_penalty": _ring(regularizers=[{"name": "gradient_penalty"}]),
    "regularizer:r1": _ring(regularizers=[{"name": "r1", "gamma": 1.0}]),
    "regularizer:r2": _ring(regularizers=[{"name": "r2", "gamma": 1.0}]),
    # SGD: with the Wasserstein cost, a bias whose unit is active on every example has a gradient of
    # exactly 0 (E_fake 1 - E_real 1), so Adam turns its rounding noise into steps of +-lr, and 1 and 2
    # processes part by ~lr * steps there (3.7e-4 after 20 steps; 2e-8 with the non-saturating cost)
    "regularizer:weight_clip": {**_ring(cost={"name": "wasserstein"}, regularizers=[{"name": "weight_clip", "clip": 0.1}]),
                                "optim": {"generator": {"name": "sgd", "lr": 0.01},
                                          "discriminator": {"name": "sgd", "lr": 0.01}}},
    "auxiliary:ac_gan": _images({"class_conditional": True}, {"conditioning": "acgan"}, auxiliary=[{"name": "ac_gan"}]),
    "auxiliary:infogan": _images({}, {"info_categorical": [10], "info_continuous": 2}, prior=_INFO_PRIOR,
                                 auxiliary=[{"name": "infogan"}]),
    # PacGAN packs and minibatch-std groups are strided, so a rank's slice forms the global batch's
    # packs and groups; with a per-pack gradient penalty and n_critic 2 on top
    "coupled:pack+minibatch_std+gradient_penalty": {
        **_ring(regularizers=[{"name": "gradient_penalty"}]),
        "model": {"generator": CFG["model"]["generator"],
                  "discriminator": {"name": "mlp", "widths": [32, 32], "pack": 4, "minibatch_std": True}},
        "train": {**CFG["train"], "n_critic": 2}},
}


def _registered_terms() -> list[str]:
    from ganforge.game import AUXILIARY, REGULARIZERS

    return [f"regularizer:{n}" for n in REGULARIZERS.names()] + [f"auxiliary:{n}" for n in AUXILIARY.names()]


@pytest.mark.parametrize("term", _registered_terms())
def test_every_game_term_has_a_distributed_setup(term):
    assert term in GAME_TERMS, f"{term} is registered but has no setup in GAME_TERMS: add one"


@pytest.mark.parametrize("term", sorted(set(_registered_terms()) | set(GAME_TERMS)))
def test_two_processes_follow_the_one_process_trajectory_with(term, tmp_path):
    """Every regularizer and auxiliary cost keeps N processes = 1 process (max |weight difference|
    <= 1e-5 after 20 steps). Before issue 11 the gradient penalty drew its interpolation weights
    with the local batch size, so the shared stream drifted and every later latent batch differed."""
    if term not in GAME_TERMS:
        pytest.fail(f"{term} has no setup in GAME_TERMS")
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump(GAME_TERMS[term]))
    torchrun(1, cfg, tmp_path / "one")
    torchrun(2, cfg, tmp_path / "two")
    a, b = final_state(tmp_path / "one"), final_state(tmp_path / "two")
    assert a["step"] == b["step"] == 20
    assert max_diff(a, b) <= TOL, term
    first = load_checkpoint(list_checkpoints(tmp_path / "one" / "checkpoints")[0][1])
    assert first["step"] == 10 and max_diff(a, first) > 1e-4  # the weights moved between the checkpoints


def test_checkpoint_resumes_with_another_number_of_processes(cfg_path, tmp_path):
    torchrun(2, cfg_path, tmp_path / "run")  # 20 steps on 2 processes
    torchrun(1, cfg_path, tmp_path / "run", "train.steps=40")  # 20 more on 1
    torchrun(1, cfg_path, tmp_path / "ref", "train.steps=40")
    a, b = final_state(tmp_path / "run"), final_state(tmp_path / "ref")
    assert a["step"] == b["step"] == 40
    assert max_diff(a, b) < TOL


def test_batch_not_divisible_by_processes_is_a_clear_error(cfg_path, tmp_path):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "ganforge", "train", str(cfg_path), "--out", str(tmp_path / "x"), "--set", "train.batch_size=63"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode != 0 and "train.batch_size" in p.stderr and "divisible" in p.stderr
    assert torch.__version__  # the run directory was never created
    assert not (tmp_path / "x").exists()



BN_CFG = {
    "name": "ddp-bn",
    "data": {"name": "digits", "resolution": 8},
    "model": {"generator": {"name": "dcgan", "ngf": 8},  # batch norm in G (DCGAN) and in D
              "discriminator": {"name": "dcgan", "ndf": 8, "batch_norm": True}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 8}},
    "train": {"steps": 20, "batch_size": 16, "log_every": 10, "checkpoint_every": 10, "progress": False,
              "threads": 1, "seed": 1},
}


def test_sync_batch_norm_follows_the_one_process_trajectory_on_cpu(tmp_path):
    # PyTorch's SyncBatchNorm runs only on GPUs; ganforge's CrossProcessBatchNorm normalizes with the
    # global batch's statistics on CPU (gloo), so 2 processes with batch norm match 1 process
    cfg = tmp_path / "bn.yaml"
    cfg.write_text(yaml.safe_dump(BN_CFG))
    torchrun(1, cfg, tmp_path / "one")
    torchrun(2, cfg, tmp_path / "sync", "train.sync_batch_norm=true")
    torchrun(2, cfg, tmp_path / "local")  # each process normalizes with its own half of the batch
    one, sync, local = (final_state(tmp_path / d) for d in ("one", "sync", "local"))
    assert one["step"] == sync["step"] == 20
    assert max_diff(one, sync) < TOL
    assert max_diff(one, local) > 100 * TOL  # without it the trajectories part: the test can tell
    # the same parameter and buffer names as plain batch norm: the checkpoint resumes on 1 process
    assert set(one["generator"]) == set(sync["generator"])
    assert set(one["discriminator"]) == set(sync["discriminator"])


NODE_SCRIPT = """
import sys
import ganforge
from ganforge.errors import CheckpointError
from ganforge.train.distributed import from_env
from ganforge.train.trainer import Trainer
import yaml
info = from_env()
cfg = ganforge.config_from_dict(yaml.safe_load(open(sys.argv[1])), ["train.steps=30"])
run_dir = sys.argv[2] if info.rank == 0 else sys.argv[3]  # rank 1 stands for a node without the run's disk
try:
    Trainer(cfg, run_dir, dist_info=info).setup()
except CheckpointError as exc:
    print(f"rank {info.rank}: {exc}")
    sys.exit(2)
sys.exit(0)
"""


def test_processes_that_see_different_checkpoints_refuse_to_resume(cfg_path, tmp_path):
    """A node without the shared run directory would start afresh beside nodes that resume; every
    process stops with a clear error instead, and nothing is written."""
    torchrun(1, cfg_path, tmp_path / "run", "train.steps=10")
    before = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    script = tmp_path / "node.py"
    script.write_text(NODE_SCRIPT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
           str(cfg_path), str(tmp_path / "run"), str(tmp_path / "elsewhere")]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert p.returncode != 0
    for rank in (0, 1):
        assert f"rank {rank}: the processes disagree on where to resume" in p.stdout, p.stdout + p.stderr[-2000:]
    assert "no checkpoint to a checkpoint of step 10" in p.stdout and "storage that all nodes share" in p.stdout
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == before
    assert not (tmp_path / "elsewhere").exists()
