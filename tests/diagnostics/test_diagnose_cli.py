"""``ganforge diagnose DIR``: one line per warning, or JSON; bad input is one line and exit code 2."""

from __future__ import annotations

import json
import math
from pathlib import Path

from click.testing import CliRunner

from ganforge.cli import main
from ganforge.config import config_from_dict
from ganforge.diagnostics import diagnose


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def make_run(run_dir: Path, overpowered: bool) -> Path:
    run_dir.mkdir(parents=True)
    cfg = {"name": "cli", "data": {"name": "ring"}, "game": {"cost": {"name": "minimax"}}}
    (run_dir / "config.yaml").write_text(config_from_dict(cfg).to_yaml())
    lines = []
    for i in range(1, 21):
        bad = overpowered and i > 5
        d_real, d_fake = (0.999, 0.001) if bad else (0.55, 0.45)
        d_cost = -(math.log(d_real) + math.log(1 - d_fake))
        lines.append(json.dumps({"step": 100 * i, "d_cost": d_cost, "g_cost": math.log(1 - d_fake), "value": -d_cost,
                                 "d_real": d_real, "d_fake": d_fake, "grad_norm_g": 0.001 if bad else 1.0}))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    return run_dir


def test_diagnose_prints_one_line_per_warning(tmp_path):
    run = make_run(tmp_path / "bad", overpowered=True)
    r = run_cli("diagnose", str(run))
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines == [e.line() for e in diagnose(run)]
    assert len(lines) == 1
    assert lines[0].startswith("[overpowering] steps 600-2,000: D overpowering G since step 600: D(fake) 0.001")


def test_diagnose_json(tmp_path):
    run = make_run(tmp_path / "bad", overpowered=True)
    r = run_cli("diagnose", str(run), "--json")
    assert r.exit_code == 0
    printed = json.loads(r.output)
    assert printed == [e.to_dict() for e in diagnose(run)]
    assert printed[0]["kind"] == "overpowering" and printed[0]["evidence"]["grad_g_drop"] >= 100


def test_diagnose_a_calm_run(tmp_path):
    run = make_run(tmp_path / "calm", overpowered=False)
    r = run_cli("diagnose", str(run))
    assert r.exit_code == 0 and r.output.strip() == f"{run}: no warnings"
    assert json.loads(run_cli("diagnose", str(run), "--json").output) == []


def test_diagnose_bad_directory_is_one_line_exit_2(tmp_path):
    r = run_cli("diagnose", str(tmp_path / "nope"))
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [f"ganforge: error: {tmp_path / 'nope'} is not a ganforge run "
                                             "directory (no config.yaml)"]
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.yaml").write_text("data: {name: nothing_like_this}\n")
    r = run_cli("diagnose", str(tmp_path / "broken"))
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    assert "nothing_like_this" in r.output
