"""Ctrl-C twice in quick succession (issue 11, "Friction"): one line on stderr and exit code 130,
whatever training is doing at that moment, and no checkpoint left half-written."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from tiny_ring import tiny_ring

from ganforge.train.checkpoint import list_checkpoints, load_checkpoint


@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
    # checkpoints every 5 steps and a log line every 20: the second Ctrl-C often lands in a write
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_ring(steps=1_000_000, checkpoint_every=5, log_every=20)))
    return path


# Delays after the first log line: the first log window is when the diagnostics import scipy, where
# b6bd8ea's KeyboardInterrupt passed through an extension's import and the process ended "killed
# by SIGINT" (-2) instead of 130, or printed a traceback.
@pytest.mark.parametrize("delay", [0.0, 0.03, 0.1, 0.3])
def test_second_ctrl_c_50ms_after_the_first_exits_130_with_one_line(tmp_path, config_file, delay):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"),
                                                                   str(_src())) if p)}
    p = subprocess.Popen([sys.executable, "-m", "ganforge", "train", str(config_file), "--out", str(run)],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    metrics = run / "metrics.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (metrics.exists() and metrics.read_text().count("\n") >= 1):
        time.sleep(0.005)
    time.sleep(delay)
    p.send_signal(signal.SIGINT)
    time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    lines = err.strip().splitlines()
    assert p.returncode == 130, err[-2000:]
    assert lines == ["ganforge: interrupted; resume with the same command"] or (
        len(lines) == 1 and "stopped by SIGINT" in lines[0]), err[-2000:]
    found = list_checkpoints(run / "checkpoints")
    assert found
    for _, path in found:  # every checkpoint left behind is whole
        load_checkpoint(path)


def _src():
    import ganforge

    return os.path.dirname(os.path.dirname(ganforge.__file__))


def test_cli_run_in_process_leaves_the_sigint_handler_as_it_found_it(tmp_path):
    # click's CliRunner (or any host process): the CLI's Ctrl-C handler is only lent for the command
    from click.testing import CliRunner

    from ganforge.cli import main

    before = signal.getsignal(signal.SIGINT)
    result = CliRunner().invoke(main, ["train", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "ganforge: error:" in result.output
    assert signal.getsignal(signal.SIGINT) is before
