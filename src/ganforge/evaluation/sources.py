"""Where images to measure come from, read batch by batch: generators, datasets, folders, arrays.

Every source yields float32 batches ``(b, C, H, W)``; ganforge's convention is [-1, 1] (the
extractor refuses anything else with one line). A finite source also gives random access
(``get(indices)``), so that disjoint subsets of real data (the halves of ``--floor``) can be read
without copying the whole set.

- :class:`GeneratorSource`: ``n`` samples of a generator from a seeded ``torch.Generator``.
- :class:`TensorSource`: images already in memory (a dataset's ``examples``), with labels.
- :class:`ArraySource`: a ``.npy`` (memory-mapped) or ``.npz`` array of samples: uint8 (0..255)
  or float in [-1, 1] (what ``ganforge sample --out x.npy`` writes), layout NCHW, NHWC or NHW.
- :class:`FolderSource`: PNG/JPEG files under a folder (recursively, sorted), decoded per batch.
- :class:`SubsetSource`: some indices of a finite source.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ganforge.errors import DataError

__all__ = ["ArraySource", "FolderSource", "GeneratorSource", "ImageSource", "SubsetSource", "TensorSource"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class ImageSource:
    """A finite, ordered set of images. Subclasses implement ``__len__`` and ``get`` (or ``batches``)."""

    name: str = "images"
    labels: Tensor | None = None  # (N,) int64 when known

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, indices: Sequence[int] | Tensor) -> Tensor:
        """Images ``(len(indices), C, H, W)`` float32."""
        raise NotImplementedError

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        n = len(self)
        for start in range(0, n, batch_size):
            yield self.get(torch.arange(start, min(start + batch_size, n)))

    def subset(self, indices: Tensor, name: str | None = None) -> SubsetSource:
        return SubsetSource(self, indices, name)


class SubsetSource(ImageSource):
    def __init__(self, base: ImageSource, indices: Tensor, name: str | None = None) -> None:
        self.base = base
        self.indices = torch.as_tensor(indices, dtype=torch.int64)
        self.name = name or base.name
        self.labels = None if base.labels is None else base.labels[self.indices]

    def __len__(self) -> int:
        return int(self.indices.numel())

    def get(self, indices: Sequence[int] | Tensor) -> Tensor:
        return self.base.get(self.indices[torch.as_tensor(indices, dtype=torch.int64)])


class TensorSource(ImageSource):
    """Images in memory ``(N, C, H, W)``, e.g. a dataset's ``examples`` in [-1, 1]."""

    def __init__(self, images: Tensor, labels: Tensor | None = None, name: str = "images") -> None:
        self.images = images
        self.labels = labels
        self.name = name

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def get(self, indices: Sequence[int] | Tensor) -> Tensor:
        return self.images[torch.as_tensor(indices, dtype=torch.int64)].float()


class GeneratorSource(ImageSource):
    """``n`` samples of ``generator`` with latents (and labels) from ``torch.Generator(seed)``.

    Samples are made batch by batch in eval mode, under ``torch.no_grad``, and moved to the CPU;
    the generator's mode is restored afterwards. Conditional generators get uniform random labels.
    """

    def __init__(self, generator: nn.Module, prior, n: int, seed: int = 0, n_classes: int = 0,
                 device: torch.device | str | None = None, name: str = "generated samples") -> None:
        self.generator, self.prior, self.n, self.seed = generator, prior, n, seed
        self.n_classes = n_classes
        self.device = device
        self.name = name

    def __len__(self) -> int:
        return self.n

    @torch.no_grad()
    def batches(self, batch_size: int) -> Iterator[Tensor]:
        g = torch.Generator().manual_seed(self.seed)
        device = self.device
        if device is None:
            p = next(iter(self.generator.parameters()), None)
            device = p.device if p is not None else torch.device("cpu")
        was_training = self.generator.training
        self.generator.eval()
        try:
            for start in range(0, self.n, batch_size):
                b = min(batch_size, self.n - start)
                z = self.prior.sample(b, g)  # (b, latent_dim)
                y = torch.randint(self.n_classes, (b,), generator=g).to(device) if self.n_classes else None
                yield self.generator(z.to(device), y).float().cpu()
        finally:
            self.generator.train(was_training)


def _layout(shape: tuple[int, ...], source: str) -> str:
    """NHW, NCHW or NHWC from an array's shape (channels are 1 or 3)."""
    if len(shape) == 3:
        return "NHW"
    if len(shape) == 4 and shape[1] in (1, 3):
        return "NCHW"
    if len(shape) == 4 and shape[3] in (1, 3):
        return "NHWC"
    raise DataError(f"{source}: array of shape {shape} is not a batch of images; expected (N, C, H, W), "
                    "(N, H, W, C) with C = 1 or 3, or (N, H, W)")


def _to_float(images: np.ndarray, source: str) -> Tensor:
    """uint8 0..255 -> [-1, 1]; floats are kept (the extractor checks their range)."""
    if images.dtype == np.uint8:
        return torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0)
    if images.dtype.kind != "f":
        raise DataError(f"{source}: images have dtype {images.dtype}; expected uint8 (0..255) or floats in [-1, 1]")
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))


class ArraySource(ImageSource):
    """A ``.npy`` (memory-mapped, read per batch) or ``.npz`` array of images.

    ``.npz``: the images are the array ``key`` (default: ``samples``, else ``images``, else the only
    array); labels, when present, from ``labels``.
    """

    def __init__(self, path: str | Path, key: str | None = None) -> None:
        p = Path(path)
        self.path, self.name = p, str(p)
        labels = None
        try:
            if p.suffix == ".npy":
                arr = np.load(p, mmap_mode="r", allow_pickle=False)
            elif p.suffix == ".npz":
                with np.load(p, allow_pickle=False) as archive:
                    names = list(archive.files)
                    if key is None:
                        key = next((k for k in ("samples", "images") if k in names), names[0] if len(names) == 1 else None)
                    if key is None or key not in names:
                        raise DataError(f"{p}: which array holds the images? It has {names}; name it "
                                        "'samples' or 'images'")
                    arr = archive[key]
                    if "labels" in names:
                        labels = np.asarray(archive["labels"])
                self.name = f"{p}[{key}]"
            else:
                raise DataError(f"{p}: unsupported sample file {p.suffix or '(no suffix)'}; expected .npy, .npz "
                                "or a folder of images")
        except FileNotFoundError:
            raise DataError(f"{p}: file not found") from None
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(f"{p}: not a readable numpy array ({str(exc).splitlines()[0]})") from None
        if arr.ndim == 0 or arr.shape[0] == 0:
            raise DataError(f"{self.name}: holds no samples (shape {arr.shape})")
        self.layout = _layout(tuple(arr.shape), self.name)
        self.array = arr
        if labels is not None and labels.shape == (arr.shape[0],) and labels.dtype.kind in "iu":
            self.labels = torch.from_numpy(labels.astype(np.int64))

    def __len__(self) -> int:
        return int(self.array.shape[0])

    def get(self, indices: Sequence[int] | Tensor) -> Tensor:
        idx = np.asarray(torch.as_tensor(indices, dtype=torch.int64))
        part = np.asarray(self.array[idx])
        if self.layout == "NHW":
            part = part[:, None]
        elif self.layout == "NHWC":
            part = part.transpose(0, 3, 1, 2)
        return _to_float(part, self.name)


class FolderSource(ImageSource):
    """PNG/JPEG files under ``path`` (recursively, sorted by path, hidden files skipped).

    Grey images (mode L) give 1 channel, others 3 (RGB); all must have one size.
    """

    def __init__(self, path: str | Path) -> None:
        root = Path(path)
        self.root, self.name = root, str(root)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder of images")
        files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(root).parts)]
        if not files:
            raise DataError(f"{root}: no sample images found (looked for {', '.join(IMAGE_SUFFIXES)} files, "
                            "recursively)")
        self.files = sorted(files, key=lambda q: q.relative_to(root).as_posix())
        self._shape: tuple[int, int, int] | None = None

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, path: Path) -> np.ndarray:
        """One image as float32 (C, H, W) in [-1, 1], read by its real bit depth (16-bit, palette,
        alpha, CMYK...: ``ganforge.data.images.image_pixels``, the decoder of the training data)."""
        from PIL import Image, UnidentifiedImageError

        from ganforge.data.images import image_pixels

        try:
            with Image.open(path) as img:
                img.load()
                pixels = image_pixels(img, path)
        except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as exc:
            raise DataError(f"{path}: unreadable or damaged image ({str(exc).splitlines()[0]})") from None
        if pixels.dtype == np.uint8:
            arr = pixels.astype(np.float32) / 127.5 - 1.0
        else:
            arr = pixels.astype(np.float32) * 2.0 - 1.0
        arr = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)  # (C, H, W)
        if self._shape is None:
            self._shape = arr.shape
        elif arr.shape != self._shape:
            raise DataError(f"{path}: image of {arr.shape[0]}x{arr.shape[1]}x{arr.shape[2]} (CxHxW), but the first "
                            f"one is {'x'.join(map(str, self._shape))}; all samples must have one size")
        return arr

    def get(self, indices: Sequence[int] | Tensor) -> Tensor:
        idx = torch.as_tensor(indices, dtype=torch.int64).tolist()
        return torch.from_numpy(np.stack([self._decode(self.files[i]) for i in idx]))


def open_samples(path: str | Path) -> ImageSource:
    """A folder of images, or a ``.npy`` / ``.npz`` array."""
    p = Path(path)
    if p.is_dir():
        return FolderSource(p)
    if not p.exists():
        raise DataError(f"{p}: not found")
    return ArraySource(p)
