"""Plugins: components registered in Python, used from the command line by name."""

from __future__ import annotations

import sys

import pytest
import torch
import yaml
from click.testing import CliRunner
from safetensors.torch import load_file

from ganforge.cli import main
from ganforge.game import COSTS
from ganforge.registry import load_plugins

TINY = {
    "name": "tiny",
    "data": {"name": "ring"},
    "model": {"generator": {"name": "mlp", "widths": [8]}, "discriminator": {"name": "mlp", "widths": [8]}},
    "game": {"prior": {"name": "gaussian", "latent_dim": 2}},
    "train": {"steps": 2, "batch_size": 8, "log_every": 1, "checkpoint_every": 2, "progress": False, "threads": 1},
}

PLUGIN = '''
from ganforge.game import COSTS
from ganforge.game.losses import NonSaturating


@COSTS.register("{name}")
class PluginCost(NonSaturating):
    """The non-saturating cost, registered by a plugin."""
'''


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A directory on sys.path for plugin modules; the registries and sys.modules are restored after."""
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(COSTS, "_entries", dict(COSTS._entries))
    monkeypatch.setattr(COSTS, "_models", dict(COSTS._models))
    monkeypatch.delenv("GANFORGE_PLUGINS", raising=False)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("gf_test_plugin"):
            del sys.modules[name]


def _final_generator(run) -> dict[str, torch.Tensor]:
    (ckpt,) = sorted((run / "checkpoints").iterdir())[-1:]
    return {k: v for k, v in load_file(str(ckpt)).items() if k.startswith("generator.")}


def test_a_plugin_cost_is_usable_from_the_cli(plugin_dir, one_thread):
    (plugin_dir / "gf_test_plugin_cli.py").write_text(PLUGIN.format(name="plugin_ns"))
    (plugin_dir / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    args = ["train", str(plugin_dir / "tiny.yaml"), "--set", "game.cost.name=plugin_ns"]
    r = CliRunner().invoke(main, [*args, "--out", str(plugin_dir / "without")])
    assert r.exit_code == 2 and "unknown cost 'plugin_ns'" in r.output  # not loaded: an unknown name
    r = CliRunner().invoke(main, ["--plugin", "gf_test_plugin_cli", *args, "--out", str(plugin_dir / "plugin")])
    assert r.exit_code == 0, r.output
    assert "name: plugin_ns" in (plugin_dir / "plugin" / "config.yaml").read_text()
    r = CliRunner().invoke(main, ["train", str(plugin_dir / "tiny.yaml"), "--out", str(plugin_dir / "builtin")])
    assert r.exit_code == 0, r.output
    # the plugin's cost is the built-in non-saturating one: the same seed gives the same weights
    a, b = _final_generator(plugin_dir / "plugin"), _final_generator(plugin_dir / "builtin")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # sampling the run needs the plugin too; the environment variable names it for every command
    r = CliRunner().invoke(main, ["sample", str(plugin_dir / "plugin"), "--out", str(plugin_dir / "s.npy"), "--n", "4"],
                           env={"GANFORGE_PLUGINS": "gf_test_plugin_cli"})
    assert r.exit_code == 0, r.output


def test_plugins_from_the_environment_and_entry_points(plugin_dir):
    (plugin_dir / "gf_test_plugin_env.py").write_text(PLUGIN.format(name="plugin_env"))
    (plugin_dir / "gf_test_plugin_ep.py").write_text(PLUGIN.format(name="plugin_ep"))
    dist = plugin_dir / "gf_test_plugin_dist-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: gf-test-plugin-dist\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[ganforge.plugins]\nmine = gf_test_plugin_ep\n")
    loaded = load_plugins((), environ={"GANFORGE_PLUGINS": " gf_test_plugin_env , "})
    assert loaded == ["gf_test_plugin_ep", "gf_test_plugin_env"]
    assert "plugin_env" in COSTS and "plugin_ep" in COSTS
    assert load_plugins((), environ={"GANFORGE_PLUGINS": "gf_test_plugin_env"})  # again: no double registration


def test_plugin_errors_are_one_line(plugin_dir):
    (plugin_dir / "gf_test_plugin_broken.py").write_text("raise RuntimeError('half-written plugin')\n")
    (plugin_dir / "gf_test_plugin_dep.py").write_text("import gf_no_such_dependency\n")
    for args, words in [(["--plugin", "gf_test_plugin_missing"], "not found"),
                        (["--plugin", "gf_test_plugin_broken"], "RuntimeError: half-written plugin"),
                        (["--plugin", "gf_test_plugin_dep"], "gf_no_such_dependency")]:
        r = CliRunner().invoke(main, [*args, "recipes"])
        lines = r.output.strip().splitlines()
        assert r.exit_code == 2 and len(lines) == 1, r.output
        assert lines[0].startswith("ganforge: error: plugin module") and words in lines[0], lines[0]
