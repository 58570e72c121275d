"""``ganforge demo``: the 1-D game's Figure 4 is written and its path printed as soon as that game is
done, before the ring and the grid start (issue 11: the first figure came after all three games)."""

from __future__ import annotations

from pathlib import Path

import yaml

from ganforge.demo import run_demo


def test_the_first_figure_is_printed_before_the_other_games_start(tmp_path, one_thread, monkeypatch):
    import ganforge.demo

    real_load = ganforge.demo.load_config
    # 16 steps per game: the order of the output is under test, not the games (the last override wins)
    monkeypatch.setattr(ganforge.demo, "load_config", lambda name, over: real_load(name, [*over, "train.steps=16"]))
    lines: list[str] = []
    existed: dict[str, bool] = {}

    def echo(line: str) -> None:
        lines.append(line)
        if line.startswith("[") and "figure" in line:
            path = line.rsplit(": ", 1)[1]
            existed[path] = Path(path).is_file()  # written before it is announced

    results = run_demo(tmp_path, quick=True, echo=echo)
    starts = [i for i, ln in enumerate(lines) if ln.startswith(("[1/3] the 1-D", "[2/3] ring8", "[3/3] grid25"))]
    fig1 = next(i for i, ln in enumerate(lines) if ln.startswith("[1/3] figure"))
    assert starts[0] < fig1 < starts[1] < starts[2]
    assert lines[fig1].endswith(str(tmp_path / "figure4_gaussian1d.png"))
    assert " s since the start): " in lines[fig1]
    figs = [ln.rsplit(": ", 1)[1] for ln in lines if ln.startswith("[") and "] figure (" in ln]
    assert figs == [str(tmp_path / n) for n in ("figure4_gaussian1d.png", "samples_ring8.png", "samples_grid25.png")]
    assert all(existed[f] for f in figs)
    # every game on one thread (tiny networks: a thread pool only spins on a busy CPU)
    for game in ("gaussian1d", "ring8", "grid25"):
        cfg = yaml.safe_load((tmp_path / game / "config.yaml").read_text())
        assert cfg["train"]["threads"] == 1 and cfg["train"]["steps"] == 16, game
    assert set(results) == {"gaussian1d", "ring8", "grid25"}
