"""Where real examples come from. Every source is registered in ``DATASETS`` by name."""

from ganforge.data.base import Dataset
from ganforge.registry import Registry

DATASETS: Registry[Dataset] = Registry("dataset")

from ganforge.data import images, stacked_mnist, toy  # noqa: E402,F401  (registers the image datasets, stacked MNIST and toy distributions)
from ganforge.tabular import dataset as _table  # noqa: E402,F401  (registers the table source)

__all__ = ["DATASETS", "Dataset"]
