"""`ganforge config --schema`: every section, field and registered component, read from the code."""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from ganforge import schema
from ganforge.cli import main
from ganforge.components import load_config
from ganforge.config import Component, Config

ROOT = Path(__file__).resolve().parents[1]


def _leaf_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    out = []
    for name, field in model.model_fields.items():
        sub = field.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and not issubclass(sub, Component):
            out += _leaf_paths(sub, f"{prefix}{name}.")
        elif typing.get_origin(sub) in (typing.Union, types.UnionType) and any(
                isinstance(a, type) and issubclass(a, BaseModel) for a in typing.get_args(sub)):
            section = next(a for a in typing.get_args(sub) if isinstance(a, type) and issubclass(a, BaseModel))
            out += [prefix + name, *_leaf_paths(section, f"{prefix}{name}.")]  # an optional section
        else:
            out.append(prefix + name)
    return out


def test_the_committed_reference_is_the_generated_one():
    """docs/config-reference.md never goes stale: regenerate it with
    `ganforge config --schema --format markdown > docs/config-reference.md`."""
    r = CliRunner().invoke(main, ["config", "--schema", "--format", "markdown"])
    assert r.exit_code == 0, r.output
    assert (ROOT / "docs" / "config-reference.md").read_text() == r.output


def test_every_field_and_component_is_described():
    data = json.loads(CliRunner().invoke(main, ["config", "--schema", "--format", "json"]).output)
    rows = {r["path"]: r for sec in data["sections"].values() for r in sec["fields"]}
    assert sorted(rows) == sorted(_leaf_paths(Config))
    assert rows["train.steps"] == {"path": "train.steps", "type": "int > 0", "default": "5000",
                                   "meaning": "generator steps"}
    assert rows["train.seed"]["type"] == "int in [0, 4294967296)"
    assert rows["optim.generator.betas"]["type"] == "tuple[float in [0, 1), float in [0, 1)]"
    assert rows["optim.generator.name"]["type"] == '"adam" | "adamw" | "sgd" | "rmsprop"'
    assert rows["train.threads"] == {"path": "train.threads", "type": "int > 0 or null", "default": "null",
                                     "meaning": "torch intra-op threads; None keeps torch's default"}
    for where, (registry, _) in schema.REGISTRIES.items():
        assert list(data["components"][where]["entries"]) == registry.names()
    gp = {p["name"]: p for p in data["components"]["model.generator"]["entries"]["dcgan"]["params"]}
    assert gp["ngf"] == {"name": "ngf", "type": "int > 0", "default": "64", "required": False,
                         "meaning": "channels of the last hidden layer (next to the image)"}
    assert "latent_dim" not in gp and "out_shape" not in gp  # passed by ganforge, not the user
    folder = {p["name"]: p for p in data["components"]["data"]["entries"]["image_folder"]["params"]}
    assert folder["path"]["required"] and folder["path"]["default"] is None
    assert folder["hflip"]["meaning"].startswith("random horizontal flips")


def test_text_schema_and_resolved_config():
    r = CliRunner().invoke(main, ["config", "--schema"])
    assert r.exit_code == 0
    assert "  train.steps: int > 0 = 5000  # generator steps" in r.output.splitlines()
    r = CliRunner().invoke(main, ["config", "ring8", "--set", "train.steps=7"])
    assert r.exit_code == 0
    resolved = yaml.safe_load(r.output)
    assert resolved == load_config("ring8", ["train.steps=7"]).to_dict()
    r = CliRunner().invoke(main, ["config", "ring8", "--set", "game.cost.name=wgan"])
    assert r.exit_code == 2 and r.output.startswith("ganforge: error: config game.cost.name: unknown cost 'wgan'")
    r = CliRunner().invoke(main, ["config"])
    assert r.exit_code == 2 and "either CONFIG" in r.output


def test_the_image_folder_example_loads_and_builds(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from ganforge.components import build_experiment

    for i in range(3):
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    cfg = load_config("my-images", [f"data.path={tmp_path}"])
    exp = build_experiment(cfg)
    assert exp.dataset.shape == (3, 64, 64) and len(exp.dataset) == 3
    with torch.no_grad():
        x = exp.generator.eval()(exp.prior.sample(2, torch.Generator().manual_seed(0)), None)
    assert x.shape == (2, 3, 64, 64)
    first = (ROOT / "src" / "ganforge" / "configs" / "my-images.yaml").read_text().splitlines()[0]
    assert first.startswith("# ")


@pytest.mark.parametrize("value,shown", [(None, "null"), (True, "true"), ((0.5, 0.9), "[0.5, 0.9]"), ("a", '"a"')])
def test_defaults_are_shown_as_yaml_values(value, shown):
    assert schema._show(value) == shown


def test_linter_notes_are_not_meanings():
    assert schema.clean_comment("# noqa: B006  (never mutated)") == ""
    assert schema.clean_comment("# noqa: B006  Q head: category counts") == "Q head: category counts"
    assert schema.clean_comment("# type: ignore[call-arg]  # p(z)") == "p(z)"
    assert schema.clean_comment("# generator steps") == "generator steps"
