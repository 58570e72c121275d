"""Reproducible training of our feature classifiers (``ganforge features train digits|mnist``).

A recipe fixes everything: the data and its split, the architecture, the optimizer, the epochs
and the augmentation. Given the same recipe, seed, thread count and torch build, two runs give
bit-identical weights: the weights are initialised from ``seed`` in a forked RNG, the batches and
the random shifts come from one ``torch.Generator`` seeded with ``seed``, the thread count is fixed
for the duration (1 by default) and deterministic algorithms are switched on.

- ``digits``: scikit-learn's 1,797 8x8 digits; train on the first 1,437 (80 %), hold out the last 360.
- ``mnist``: the 10,000 MNIST test images (the IDX files in ``data_path``); train on the first
  8,000, hold out the last 2,000. (The test set is the part of MNIST the project has; a GAN
  trained on MNIST's training set is then measured with a classifier that never saw its data.)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.data import DATASETS
from ganforge.errors import DataError
from ganforge.evaluation.features.base import FeatureError
from ganforge.evaluation.features.classifier import SmallCNN, save_classifier
from ganforge.registry import Registry

__all__ = ["CLASSIFIER_RECIPES", "ClassifierRecipe", "TrainedClassifier", "accuracy", "train_classifier"]


@dataclass(frozen=True)
class ClassifierRecipe:
    """Everything that determines a trained classifier besides the seed."""

    name: str
    dataset: str  # a registered dataset
    dataset_params: dict[str, Any]
    train_split: tuple[int, int]  # [start, stop) of the dataset's examples
    heldout_split: tuple[int, int]
    architecture: dict[str, Any]  # SmallCNN parameters
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3  # Adam, cosine-decayed to 0 over the epochs
    weight_decay: float = 0.0
    max_shift: int = 2  # random integer translations of up to this many pixels (augmentation)
    notes: dict[str, str] = field(default_factory=dict)


#: Recipes by name; each is a function of ``data_path`` (None for built-in data).
CLASSIFIER_RECIPES: Registry[ClassifierRecipe] = Registry("classifier recipe")


@CLASSIFIER_RECIPES.register("digits")
def digits_recipe(data_path: str | None = None) -> ClassifierRecipe:
    """scikit-learn's digits, 8x8: first 1,437 to train, last 360 held out."""
    return ClassifierRecipe(
        name="digits", dataset="digits", dataset_params={}, train_split=(0, 1437), heldout_split=(1437, 1797),
        architecture={"image_size": 8, "channels": 1, "widths": [32, 64], "hidden": 64, "n_classes": 10},
        epochs=60, batch_size=32, lr=2e-3, max_shift=1)


@CLASSIFIER_RECIPES.register("mnist")
def mnist_recipe(data_path: str | None = None) -> ClassifierRecipe:
    """The MNIST test set, 28x28: first 8,000 to train, last 2,000 held out."""
    if data_path is None:
        raise DataError("mnist: give --data-path DIR, the directory holding t10k-images-idx3-ubyte[.gz] and "
                        "t10k-labels-idx1-ubyte[.gz] (nothing is downloaded)")
    return ClassifierRecipe(
        name="mnist", dataset="mnist", dataset_params={"path": str(data_path), "split": "test"},
        train_split=(0, 8000), heldout_split=(8000, 10000),
        architecture={"image_size": 28, "channels": 1, "widths": [32, 64, 64], "hidden": 128, "n_classes": 10},
        epochs=12, batch_size=64, lr=2e-3, max_shift=2)


@dataclass
class TrainedClassifier:
    """A trained classifier and how it did."""

    model: SmallCNN
    heldout_accuracy: float
    train_accuracy: float
    record: dict[str, Any]  # stored in the file's metadata (nothing that varies between identical runs)
    seconds: float = 0.0


@contextlib.contextmanager
def deterministic(threads: int) -> Iterator[None]:
    """Fixed thread count and deterministic algorithms for the duration; restored afterwards."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)


def load_split(recipe: ClassifierRecipe, which: str) -> tuple[Tensor, Tensor]:
    """``(images (n, C, H, W) in [-1, 1], labels (n,))`` of the recipe's train or held-out split."""
    dataset = DATASETS.build(recipe.dataset, recipe.dataset_params, where="data")
    if dataset.examples is None or getattr(dataset, "targets", None) is None:
        raise DataError(f"{recipe.dataset}: a classifier needs labelled images")
    start, stop = recipe.train_split if which == "train" else recipe.heldout_split
    if stop > len(dataset):
        raise DataError(f"{recipe.dataset}: the recipe's {which} split [{start}, {stop}) needs {stop} examples, "
                        f"the data has {len(dataset)}")
    return dataset.examples[start:stop], dataset.targets[start:stop]


def _shift(x: Tensor, max_shift: int, g: torch.Generator) -> Tensor:
    """Translate each image by a random integer (dy, dx) in [-max_shift, max_shift], filling with -1."""
    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    s = max_shift
    padded = F.pad(x, (s, s, s, s), value=-1.0)  # (n, C, h + 2s, w + 2s)
    d = torch.randint(0, 2 * s + 1, (n, 2), generator=g)  # (n, 2)
    rows = (d[:, 0:1] + torch.arange(h)).view(n, 1, h, 1)
    cols = (d[:, 1:2] + torch.arange(w)).view(n, 1, 1, w)
    idx_n = torch.arange(n).view(n, 1, 1, 1)
    idx_c = torch.arange(x.shape[1]).view(1, -1, 1, 1)
    return padded[idx_n, idx_c, rows, cols]  # (n, C, h, w)


@torch.no_grad()
def accuracy(model: SmallCNN, images: Tensor, labels: Tensor, batch_size: int = 500) -> float:
    """Fraction of ``images`` whose argmax logit is the label."""
    was = model.training
    model.eval()
    correct = 0
    for start in range(0, images.shape[0], batch_size):
        logits = model(images[start:start + batch_size])
        correct += int((logits.argmax(dim=1) == labels[start:start + batch_size]).sum())
    model.train(was)
    return correct / max(1, images.shape[0])


def train_classifier(recipe: ClassifierRecipe, seed: int = 0, epochs: int | None = None, threads: int = 1,
                     log: Any = None) -> TrainedClassifier:
    """Train ``recipe``'s classifier reproducibly; returns it with its held-out accuracy."""
    if threads < 1:
        raise FeatureError(f"threads must be >= 1, got {threads}")
    epochs = recipe.epochs if epochs is None else epochs
    if epochs < 1:
        raise FeatureError(f"epochs must be >= 1, got {epochs}")
    x_train, y_train = load_split(recipe, "train")
    x_held, y_held = load_split(recipe, "heldout")
    t0 = time.perf_counter()
    with deterministic(threads):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = SmallCNN(**recipe.architecture)
        g = torch.Generator().manual_seed(seed)
        opt = torch.optim.Adam(model.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        n = x_train.shape[0]
        steps_per_epoch = math.ceil(n / recipe.batch_size)
        total = epochs * steps_per_epoch
        step = 0
        model.train()
        for epoch in range(epochs):
            order = torch.randperm(n, generator=g)
            for start in range(0, n, recipe.batch_size):
                idx = order[start:start + recipe.batch_size]
                x = _shift(x_train[idx], recipe.max_shift, g)
                lr = 0.5 * recipe.lr * (1.0 + math.cos(math.pi * step / total))
                for group in opt.param_groups:
                    group["lr"] = lr
                loss = F.cross_entropy(model(x), y_train[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            if log is not None:
                log(f"epoch {epoch + 1}/{epochs}: loss {float(loss.detach()):.4f}, held-out accuracy "
                    f"{accuracy(model, x_held, y_held):.4f}")
        model.eval()
        held = accuracy(model, x_held, y_held)
        train_acc = accuracy(model, x_train, y_train)
    record = {
        "recipe": recipe.name, "dataset": recipe.dataset,
        "dataset_params": {k: v for k, v in recipe.dataset_params.items() if k != "path"},
        "train_split": list(recipe.train_split), "heldout_split": list(recipe.heldout_split),
        "seed": seed, "epochs": epochs, "threads": threads, "batch_size": recipe.batch_size, "lr": recipe.lr,
        "max_shift": recipe.max_shift, "heldout_accuracy": held, "train_accuracy": train_acc,
        "heldout_size": int(y_held.shape[0]), "torch": torch.__version__,
    }
    return TrainedClassifier(model, held, train_acc, record, seconds=round(time.perf_counter() - t0, 1))


def train_and_save(name: str, out: str | Path, data_path: str | None = None, seed: int = 0,
                   epochs: int | None = None, threads: int = 1, log: Any = None) -> dict[str, Any]:
    """``ganforge features train``: train recipe ``name`` and write ``out`` (.safetensors)."""
    if Path(out).suffix != ".safetensors":
        raise FeatureError(f"--out {out}: classifier files are .safetensors")
    if name not in CLASSIFIER_RECIPES:
        raise FeatureError(f"no classifier recipe {name!r}; valid: {', '.join(CLASSIFIER_RECIPES.names())}")
    recipe = CLASSIFIER_RECIPES.get(name)(data_path)
    trained = train_classifier(recipe, seed=seed, epochs=epochs, threads=threads, log=log)
    command = f"ganforge features train {name} --out {Path(out).name} --seed {seed} --epochs {trained.record['epochs']}"
    if data_path is not None:
        command += " --data-path DIR"
    record = {**trained.record, "command": command}
    save_classifier(trained.model, out, name=name, training=record)
    return {"out": str(out), **record, "seconds": trained.seconds,
            "recipe_config": asdict(recipe) | {"dataset_params": record["dataset_params"]}}
