"""PeriodicEvaluation: metrics of the EMA generator in metrics.jsonl, without changing the trajectory."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import ganforge
from ganforge.evaluation import FeatureError, PeriodicEvaluation

TINY = ["train.steps=4", "train.batch_size=16", "train.progress=false", "train.threads=1",
        "model.generator.ngf=8", "model.discriminator.ndf=8", "train.log_every=2", "train.checkpoint_every=4"]


def _final_weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(sorted((run / "checkpoints").glob("*.safetensors"))[-1]))


def test_eval_records_in_metrics_jsonl_and_same_trajectory(tmp_path: Path) -> None:
    cfg = ganforge.load_config("digits-dcgan", TINY)
    cb = PeriodicEvaluation(every=2, n=64, metrics=("fid", "kid", "modes"))
    ganforge.train(cfg, tmp_path / "with", callbacks=[cb])
    ganforge.train(cfg, tmp_path / "without")
    records = [json.loads(line) for line in (tmp_path / "with" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    for r in evals:
        assert math.isfinite(r["eval/fid"]) and r["eval/fid"] > 0 and math.isfinite(r["eval/kid"])
        assert 1 <= r["eval/modes_covered"] <= 10
    assert [r["step"] for r in records if "d_cost" in r] == [2, 4]  # the regular records are still there
    assert cb.history == evals
    a, b = _final_weights(tmp_path / "with"), _final_weights(tmp_path / "without")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_bad_settings_fail_before_training(tmp_path: Path) -> None:
    with pytest.raises(FeatureError, match="every must be a positive integer"):
        PeriodicEvaluation(every=0)
    cfg = ganforge.load_config("digits-dcgan", TINY)
    with pytest.raises(FeatureError, match="unknown metric"):
        ganforge.train(cfg, tmp_path / "bad", callbacks=[PeriodicEvaluation(every=2, metrics=("fdi",))])
    steps = [json.loads(x)["step"] for x in (tmp_path / "bad" / "metrics.jsonl").read_text().splitlines()] \
        if (tmp_path / "bad" / "metrics.jsonl").exists() else []
    assert steps == []  # not a single step was trained
    toy = ganforge.load_config("ring8", ["train.steps=2", "train.progress=false", "train.batch_size=8"])
    with pytest.raises(FeatureError, match="needs an image dataset"):
        ganforge.train(toy, tmp_path / "toy", callbacks=[PeriodicEvaluation(every=1)])


def test_eval_every_in_the_config_logs_metrics(tmp_path):
    import ganforge
    from ganforge.train.callbacks import read_metrics

    cfg = ganforge.load_config("digits-dcgan", ["train.steps=4", "train.batch_size=16", "train.progress=false",
                                                "train.threads=1", "model.generator.ngf=8",
                                                "model.discriminator.ndf=8", "train.eval_every=2",
                                                "train.eval_metrics=[fid, kid]"])
    ganforge.train(cfg, tmp_path)
    evals = [r for r in read_metrics(tmp_path / "metrics.jsonl") if "eval/fid" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert all(r["eval/fid"] >= 0 and "eval/kid" in r for r in evals)


def test_periodic_evaluation_follows_the_protocol_of_ganforge_eval(tmp_path: Path) -> None:
    """The last periodic evaluation and `ganforge eval` of the final checkpoint measure the same
    samples with the same protocol (8-bit quantization, P/R at k = 3, D/C at k = 5): same numbers."""
    from click.testing import CliRunner

    from ganforge.cli import main

    cfg = ganforge.load_config("digits-dcgan", TINY)
    cb = PeriodicEvaluation(every=4, n=64, metrics=("fid", "prdc"))
    ganforge.train(cfg, tmp_path / "run", callbacks=[cb])
    r = CliRunner().invoke(main, ["eval", str(tmp_path / "run"), "--n", "64", "--metrics", "fid,prdc"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.output)
    last = cb.history[-1]
    assert last["step"] == report["step"] == 4
    for key in ("fid", "precision", "recall", "density", "coverage"):
        assert last[f"eval/{key}"] == pytest.approx(report["metrics"][key], rel=1e-6, abs=1e-9), key
    assert cb.protocol is not None
    for key in ("quantize", "quantization", "precision_recall_k", "density_coverage_k", "n_fake", "n_real", "seed",
                "feature_network"):
        assert cb.protocol[key] == report["protocol"][key], key
    assert (cb.protocol["quantize"], cb.protocol["precision_recall_k"], cb.protocol["density_coverage_k"]) == (True, 3, 5)
