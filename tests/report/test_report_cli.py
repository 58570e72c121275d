"""``ganforge report DIR`` and ``ganforge compare DIR... --out FILE``."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ganforge.cli import main
from ganforge.config import config_from_dict


def run_cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def make_run(run_dir: Path, name: str) -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(config_from_dict({"name": name, "data": {"name": "ring"}}).to_yaml())
    recs = [{"step": 10 * i, "d_cost": 1.3, "g_cost": 0.7, "d_real": 0.55, "d_fake": 0.45, "value": -1.3,
             "grad_norm_d": 1.0, "grad_norm_g": 1.0} for i in range(1, 6)]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    return run_dir


def test_report_command_writes_the_page(tmp_path):
    run = make_run(tmp_path / "a", "alpha")
    r = run_cli("report", str(run))
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"report": str(run / "report.html")}
    page = (run / "report.html").read_text()
    assert "<title>ganforge report: alpha</title>" in page
    r = run_cli("report", str(run), "--out", str(tmp_path / "other.html"))
    assert r.exit_code == 0 and (tmp_path / "other.html").exists()


def test_compare_command_overlays_runs(tmp_path):
    a, b = make_run(tmp_path / "a", "alpha"), make_run(tmp_path / "b", "beta")
    out = tmp_path / "cmp.html"
    r = run_cli("compare", str(a), str(b), "--out", str(out))
    assert r.exit_code == 0, r.output
    assert json.loads(r.output) == {"comparison": str(out)}
    page = out.read_text()
    assert "<td>alpha</td>" in page and "<td>beta</td>" in page


def test_bad_arguments_are_one_line_exit_2_and_write_nothing(tmp_path):
    a = make_run(tmp_path / "a", "alpha")
    out = tmp_path / "cmp.html"
    for args, needle in [
        (["compare", str(a), str(tmp_path / "missing"), "--out", str(out)], "not a ganforge run directory"),
        (["compare", str(a), "--out", str(tmp_path / "cmp.txt")], "allowed: .html"),
        (["report", str(tmp_path / "missing")], "not a ganforge run directory"),
        (["report", str(a), "--out", str(tmp_path / "r.pdf")], "allowed: .html"),
    ]:
        r = run_cli(*args)
        assert r.exit_code == 2, (args, r.output)
        assert len(r.output.strip().splitlines()) == 1 and needle in r.output and "Traceback" not in r.output
    assert not out.exists() and not (tmp_path / "cmp.txt").exists() and not (a / "report.html").exists()
    # an existing report is left untouched by a failing command
    (a / "report.html").write_text("previous")
    assert run_cli("compare", str(a), str(tmp_path / "missing"), "--out", str(a / "report.html")).exit_code == 2
    assert (a / "report.html").read_text() == "previous"
