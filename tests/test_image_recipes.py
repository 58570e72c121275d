"""The image recipes: each loads and validates (MNIST ones once data.path is set), and its players
fit its data: G's images have the dataset's shape and D (with its auxiliary heads) accepts them."""

from __future__ import annotations

import pytest
import torch

from ganforge.components import build_experiment, load_config
from ganforge.config import RECIPES_DIR
from ganforge.data.images import ImageDataset, ImageOptions
from ganforge.errors import ConfigError

RECIPES = ["digits-dcgan", "mnist-dcgan", "mnist-cgan", "mnist-acgan", "mnist-infogan", "faces-dcgan"]
SHAPES = {"digits": (1, 8, 8), "mnist": (1, 28, 28), "faces": (1, 32, 32)}


def stub_dataset(name: str, class_conditional: bool) -> ImageDataset:
    """A few blank images of the recipe's data shape, so no files are needed."""
    x = torch.zeros(4, *SHAPES[name])
    return ImageDataset(x, torch.arange(4), 10, ImageOptions(class_conditional=class_conditional), "stub")


@pytest.mark.parametrize("recipe", RECIPES)
def test_image_recipe_loads_and_its_players_fit(recipe):
    first = (RECIPES_DIR / f"{recipe}.yaml").read_text().splitlines()[0]
    assert first.startswith("# ") and len(first) > 10
    overrides = ["data.path=/nowhere/mnist"] if recipe.startswith("mnist") else []
    cfg = load_config(recipe, overrides)
    assert cfg.name == recipe
    data = stub_dataset(cfg.data.name, bool(cfg.data.params.get("class_conditional")))
    exp = build_experiment(cfg, dataset=data)
    z = exp.prior.sample(2, torch.Generator().manual_seed(0))
    y = torch.tensor([1, 7]) if data.n_classes else None
    with torch.no_grad():
        x = exp.generator.eval()(z, y)
        assert x.shape == (2, *SHAPES[cfg.data.name])
        logits = exp.discriminator(x, y)
        assert logits.shape == (2,)
        if exp.auxiliary:
            _, aux = exp.discriminator.forward_aux(x, y)
            for cost in exp.auxiliary:  # the heads match what the auxiliary costs read
                assert torch.isfinite(cost.generator_term(aux, y, z, exp.prior))


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.startswith("mnist")])
def test_mnist_recipes_ask_for_the_data_path(recipe):
    with pytest.raises(ConfigError, match=r"data\.path: required by dataset 'mnist'"):
        load_config(recipe)
