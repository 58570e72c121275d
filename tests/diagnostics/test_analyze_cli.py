"""``ganforge analyze DIR [--step N]``: analysis.json against an independent dense Jacobian (torch.func)
of the run's game on the same fixed batch; bad input is one line and exit code 2."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner
from torch.func import functional_call, grad, jacrev

from ganforge.cli import main
from ganforge.components import build_experiment
from ganforge.config import config_from_dict
from ganforge.diagnostics.equilibrium_run import fixed_batch, latent_generator
from ganforge.rundir import RunDir
from ganforge.train.checkpoint import load_checkpoint

TINY = {
    "name": "tiny-analyze",
    "data": {"name": "gaussian1d", "mean": 4.0, "std": 0.5},
    "model": {"generator": {"name": "mlp", "widths": [4], "activation": "elu"},
              "discriminator": {"name": "mlp", "widths": [5], "activation": "elu"}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 1}, "cost": {"name": "non_saturating"}},
    "optim": {"generator": {"lr": 1e-3}, "discriminator": {"lr": 1e-3}},
    "train": {"steps": 20, "batch_size": 16, "log_every": 10, "checkpoint_every": 10, "keep_checkpoints": 2,
              "progress": False, "threads": 1, "ema_decay": 0.0},
}


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    from ganforge.run import train

    out = tmp_path_factory.mktemp("runs") / "tiny"
    torch.set_num_threads(1)
    train(config_from_dict(TINY), out)
    return out


def independent_jacobian(run_dir: Path, step: int, n: int, seed: int) -> np.ndarray:
    """∂ξ/∂θ of the non-saturating game on the analysis's fixed batch, with torch.func in float64."""
    run = RunDir(run_dir)
    cfg = run.read_config()
    state = load_checkpoint(run.checkpoints_dir / f"step_{step:08d}.safetensors", cfg.accepted_hashes())
    exp = build_experiment(cfg)
    G, D = exp.players["generator"].double(), exp.players["discriminator"].double()
    G.load_state_dict(state["generator"])
    D.load_state_dict(state["discriminator"])
    x, _ = fixed_batch(exp.dataset, n, seed, torch.float64)
    z = exp.prior.sample(n, latent_generator(seed)).double()
    g0 = {k: v.detach() for k, v in G.named_parameters()}
    d0 = {k: v.detach() for k, v in D.named_parameters()}
    gk, dk = list(g0), list(d0)
    sizes_g = [g0[k].numel() for k in gk]
    sizes_d = [d0[k].numel() for k in dk]

    def unflat(v, keys, sizes, ref):
        return {k: t.reshape(ref[k].shape) for k, t in zip(keys, torch.split(v, sizes), strict=True)}

    def costs(vg, vd):
        pg, pd = unflat(vg, gk, sizes_g, g0), unflat(vd, dk, sizes_d, d0)
        fake = functional_call(G, pg, (z, None))
        d_fake = functional_call(D, pd, (fake, None)).reshape(-1)
        d_real = functional_call(D, pd, (x, None)).reshape(-1)
        g_cost = F.softplus(-d_fake).mean()  # non-saturating: −E log D(G(z))
        d_cost = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        return g_cost, d_cost

    ng = sum(sizes_g)

    def xi(v):
        vg, vd = v[:ng], v[ng:]
        return torch.cat([grad(lambda a: costs(a, vd)[0])(vg), grad(lambda b: costs(vg, b)[1])(vd)])

    flat = torch.cat([t.reshape(-1) for t in [*g0.values(), *d0.values()]])
    return jacrev(xi)(flat).numpy()


def test_analyze_writes_analysis_json_matching_an_independent_dense_jacobian(tiny_run, one_thread):
    r = run_cli("analyze", str(tiny_run), "--step", "10", "--method", "dense", "--batch-size", "32", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert r.output.splitlines()[0].startswith("step 10: ")
    record = json.loads((tiny_run / "analysis.json").read_text())
    assert record["step"] == 10 and record["batch"] == {"size": 32, "seed": 3} and record["game"] == "gan"
    assert record["sizes"] == {"generator": 1 * 4 + 4 + 4 + 1, "discriminator": 5 + 5 + 5 + 1, "total": 29}
    J = independent_jacobian(tiny_run, 10, 32, 3)
    expected = -np.linalg.eigvals(J)  # the dynamics convention
    got = np.array([complex(a, b) for a, b in record["jacobian_eigenvalues"]])
    assert len(got) == 29
    scale = max(1.0, np.abs(expected).max())
    for z in got:
        assert np.min(np.abs(expected - z)) <= 1e-4 * scale, z
    for z in expected:
        assert np.min(np.abs(got - z)) <= 1e-4 * scale, z
    ng = record["sizes"]["generator"]
    hg = np.linalg.eigvalsh(J[:ng, :ng])
    assert record["hessian_min_eigenvalue"]["generator"] == pytest.approx(hg[0], abs=1e-4 * scale)
    assert record["hessian_max_eigenvalue"]["generator"] == pytest.approx(hg[-1], abs=1e-4 * scale)
    assert record["convention"]["name"] == "dynamics"
    assert record["kind"] in ("not_stationary", "stationary_not_nash", "stable_not_nash", "local_nash_stable",
                              "local_nash_not_stable") and record["verdict"]
    pa = record["path_angle"]
    assert len(pa["alphas"]) == 25 and pa["alphas"][0] == 0.0 and pa["alphas"][-1] == pytest.approx(1.2)
    assert 1.0 in pa["alphas"]  # the checkpoint itself
    assert all(c is None or -1.0 <= c <= 1.0 for c in pa["cosine"])


def test_analyze_newest_checkpoint_iterative_by_default(tiny_run, one_thread):
    r = run_cli("analyze", str(tiny_run), "--json", "--path-points", "0")
    assert r.exit_code == 0, r.output
    record = json.loads(r.output)
    assert record["step"] == 20 and "path_angle" not in record
    assert record["method"]["jacobian"] == "dense"  # 29 parameters: below the dense threshold
    assert json.loads((tiny_run / "analysis.json").read_text()) == record


def test_analyze_bad_input_is_one_line_exit_2(tiny_run, tmp_path):
    cases = [
        (("analyze", str(tiny_run), "--step", "7"), "has no checkpoint of step 7; its checkpoints are of steps 10, 20"),
        (("analyze", str(tiny_run), "--method", "dense", "--dense-max", "10"),
         "a dense check of a game with 29 parameters is too large; allowed: at most 10 parameters"),
        (("analyze", str(tmp_path / "nothing")), "is not a ganforge run directory"),
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "config.yaml").write_text(config_from_dict(TINY).to_yaml())
    cases.append((("analyze", str(empty)), "has no checkpoint yet"))
    for args, fragment in cases:
        r = CliRunner().invoke(main, list(args))
        assert r.exit_code == 2, (args, r.output)
        lines = r.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ganforge: error: ") and fragment in lines[0], r.output


# --------------------------------------------------------------------------- during training: analyze_every


def test_analyze_every_records_without_changing_the_trajectory(tmp_path, one_thread, weights_digest):
    from ganforge.run import train
    from ganforge.train.checkpoint import load_checkpoint

    plain, analyzed = tmp_path / "plain", tmp_path / "analyzed"
    train(config_from_dict(TINY), plain)
    cfg = {**TINY, "train": {**TINY["train"], "analyze_every": 10}}
    train(config_from_dict(cfg), analyzed)
    for name in ("step_00000010.safetensors", "step_00000020.safetensors"):
        a = load_checkpoint(plain / "checkpoints" / name)
        b = load_checkpoint(analyzed / "checkpoints" / name)
        for player in ("generator", "discriminator"):
            assert weights_digest(a[player]) == weights_digest(b[player])
        assert torch.equal(a["torch_rng"], b["torch_rng"]) and torch.equal(a["rng"], b["rng"])
    records = RunDir(analyzed).read_analysis_log()
    assert [r["step"] for r in records] == [10, 20]
    assert not (plain / "analysis.jsonl").exists()
    # the same figures as `ganforge analyze` on the same fixed batch (train.batch_size, seed 0)
    r = run_cli("analyze", str(analyzed), "--step", "20", "--path-points", "0")
    assert r.exit_code == 0, r.output
    full = json.loads((analyzed / "analysis.json").read_text())
    last = records[-1]
    for p in ("generator", "discriminator"):
        assert last["gradient_norm"][p] == pytest.approx(full["gradient_norm"][p], rel=1e-9)
        assert last["hessian_min_eigenvalue"][p] == pytest.approx(full["hessian_min_eigenvalue"][p], rel=1e-6, abs=1e-9)
    assert last["least_stable_eigenvalue"] == pytest.approx(full["least_stable_eigenvalue"], rel=1e-6, abs=1e-9)
    assert last["verdict"] == full["verdict"] and last["convention"] == "dynamics"
    # a resume from step 10 drops the record of step 20 and writes it again
    (analyzed / "checkpoints" / "step_00000020.safetensors").unlink()
    train(config_from_dict(cfg), analyzed)
    again = RunDir(analyzed).read_analysis_log()
    assert [r["step"] for r in again] == [10, 20]
    assert again[1]["gradient_norm"] == last["gradient_norm"]
    # the report shows the analyses over training and analysis.json's verdict
    from ganforge.report.html import render_report

    page = render_report(analyzed)
    assert "<h2>Is this an equilibrium?</h2>" in page
    assert 'alt="equilibrium analysis over training"' in page and 'alt="path angle"' not in page
    assert f"analysis.json): {full['verdict']}" in html.unescape(page)
    assert run_cli("analyze", str(analyzed), "--path-points", "5").exit_code == 0
    assert 'alt="path angle"' in render_report(analyzed)
    # analyze_every does not change the trajectory: not part of the config's hash (a resume may change it)
    assert config_from_dict(cfg).trajectory_hash() == config_from_dict(TINY).trajectory_hash()
