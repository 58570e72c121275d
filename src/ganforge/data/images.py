"""Image datasets: folders of PNG/JPEG files, array files, IDX files (MNIST) and built-in sets.

Registered in ``DATASETS``:

================  ====================================================================================
``image_folder``  PNG/JPEG files under ``path``, recursively, in sorted path order; labels from the
                  first-level subfolder names (``labels_from_subfolders``); ``skip_corrupt`` skips and
                  logs unreadable files instead of failing
``image_array``   a ``.npy`` or ``.npz`` file of images (uint8, uint16 or float in ``value_range``) in an
                  explicit ``layout`` (NHW | NHWC | NCHW); labels from ``labels_key`` (npz) or
                  ``labels_path`` (a second .npy)
``idx``           an IDX images file (magic 0x00000803) and optional IDX labels file (0x00000801),
                  gzipped or not, magic numbers and sizes verified
``mnist``         the IDX files of MNIST in the directory ``path`` (``train-*`` or ``t10k-*`` by
                  ``split``); nothing is ever downloaded
``digits``        scikit-learn's 8x8 handwritten digits (1,797 images, values 0..16, labels 0..9)
``faces``         scikit-image's LFW subset: the 100 face crops of 25x25 pixels (no labels)
================  ====================================================================================

Every source also takes the common options of ``ImageOptions`` (one place, added to each source's
signature by ``image_source``): ``resolution`` (resize the shorter side with Pillow, then centre-crop
to a square), ``channels`` (1 or 3), ``hflip`` (random horizontal flips, applied by the loader),
``class_conditional`` (expose the labels, so ``n_classes > 0``), ``subset`` ([start, stop) of the
source's examples, e.g. [0, 8000] to train a classifier and [8000, 10000] to hold out) and ``limit``.

Images are decoded once into ``examples``, a float32 tensor ``(N, C, H, W)`` scaled to (-1, 1), and
``labels`` ``(N,)`` int64. The decoded set must fit in memory (at most half of what is available, the
size is logged); streaming from disk is not supported yet, and a larger set is refused with a
DataError that says how to shrink it (``resolution``, ``subset``, ``limit``).

Image files are decoded by their real bit depth (``image_pixels``): 1-bit, 8-bit grey and colour,
palette, CMYK, 16-bit grey (``I;16*``, and ``I`` read as 16-bit) and float ``F`` images in [0, 1] all
land on the same scale; images with an alpha channel (``RGBA``, ``LA``, ``PA``, a palette with a
transparent entry) are **composited on a white background**. Other modes (``LAB``, ``HSV``, ...) are
refused with a DataError naming the file and the mode. A folder of 8-bit images is held as uint8
until decoding; one 16-bit, float or alpha image among them makes the folder float32 in [0, 1].

Data paths (``path``, ``labels_path``, ``images``, ``labels``) expand ``~``, and a relative path is
resolved against the current directory; messages show the absolute path that was read.

What cannot fit in memory is refused before it is read: an ``.npz`` member whose header's shape x
dtype is too large (checked before decompressing), an IDX file whose header claims too many bytes
(a gzipped one is decompressed as a stream), and a decoded set over the share of free memory above.

Every bad input raises ``ganforge.errors.DataError`` with one line naming the file (and the index,
for arrays) and what was expected.
"""

from __future__ import annotations

import dataclasses
import gzip
import inspect
import logging
import math
import os
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal, get_type_hints

import numpy as np
import torch
from PIL import Image
from pydantic import Field
from torch import Tensor

from ganforge.data import DATASETS
from ganforge.data.base import MEMORY_FRACTION, Dataset, check_memory
from ganforge.errors import DataError
from ganforge.io import available_memory_bytes

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IDX_IMAGES_MAGIC = 0x00000803  # unsigned bytes, 3 dimensions (N, H, W)
IDX_LABELS_MAGIC = 0x00000801  # unsigned bytes, 1 dimension (N,)
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, as Pillow's convert("L")
_UNREADABLE = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)

PositiveInt = Annotated[int, Field(gt=0)]
NonNegInt = Annotated[int, Field(ge=0)]


@dataclasses.dataclass(frozen=True)
class ImageOptions:
    """Options common to every image source (each becomes a parameter of every source)."""

    resolution: PositiveInt | None = None  # side of the square output; None keeps the source's size
    channels: Literal[1, 3] | None = None  # None keeps the source's (folder: the first image's)
    hflip: bool = False  # random horizontal flips of training batches (read by the loader)
    class_conditional: bool = False  # expose labels: n_classes > 0, conditional players
    subset: tuple[NonNegInt, NonNegInt] | None = None  # [start, stop) of the source's examples
    limit: PositiveInt | None = None  # at most this many examples (after subset)


class ImageDataset(Dataset):
    """A finite set of images in memory.

    Attributes:
        examples: ``(N, C, H, W)`` float32 in [-1, 1].
        labels: ``(N,)`` int64 when ``class_conditional``, else None (then ``n_classes == 0``).
        targets: the source's labels whether exposed or not (for classifiers and metrics), or None.
        class_names: names of the classes (folder names, digits), when the source has them.
        hflip: whether training batches should be flipped horizontally at random.
        source: the file or directory the images came from (for messages).
        skipped_files: files an image folder skipped as unreadable (``skip_corrupt``).
    """

    value_range = (-1.0, 1.0)
    skipped_files: tuple[str, ...] = ()

    def __init__(self, examples: Tensor, targets: Tensor | None, n_classes: int, options: ImageOptions,
                 source: str, class_names: list[str] | None = None):
        self.examples = examples
        self.shape = tuple(examples.shape[1:])
        self.targets = targets
        self.class_conditional = options.class_conditional
        if options.class_conditional and targets is None:
            raise DataError(f"{source}: data.class_conditional is true but this source has no labels")
        self.labels = targets if options.class_conditional else None
        self.n_classes = n_classes if options.class_conditional else 0
        self.class_names = class_names
        self.hflip = options.hflip
        self.source = source

    @property
    def kind(self) -> str:
        return "images"

    def describe(self) -> dict[str, Any]:
        """``Dataset.describe`` plus ``source``: the file or folder the images were read from (for
        messages only: it is not part of the fingerprint)."""
        return {**super().describe(), "source": self.source}

    def __repr__(self) -> str:
        return (f"ImageDataset({self.source!r}, n={len(self)}, shape={self.shape}, "
                f"n_classes={self.n_classes}, hflip={self.hflip})")


def image_source(name: str) -> Callable[[Callable[..., ImageDataset]], Callable[..., ImageDataset]]:
    """Register ``load(<own params>, options: ImageOptions)`` as dataset ``name`` whose parameters
    are its own plus the fields of ``ImageOptions``, so the common options are defined once."""

    def decorator(load: Callable[..., ImageDataset]) -> Callable[..., ImageDataset]:
        own = [p for p in inspect.signature(load, eval_str=True).parameters.values() if p.name != "options"]
        hints = get_type_hints(ImageOptions, include_extras=True)
        common = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                                    annotation=hints[f.name]) for f in dataclasses.fields(ImageOptions)]

        def build(**kwargs: Any) -> ImageDataset:
            options = ImageOptions(**{p.name: kwargs.pop(p.name) for p in common if p.name in kwargs})
            return load(**kwargs, options=options)

        build.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in own] + common)
        build.__name__ = build.__qualname__ = load.__name__
        build.__doc__ = load.__doc__
        DATASETS.register(name)(build)
        return load

    return decorator


# -- shared steps ----------------------------------------------------------------------------------

def data_path(path: str, param: str) -> Path:
    """A data file or folder as the user gave it in ``data.<param>``, with ``~`` expanded and a
    relative path made absolute against the current directory (without resolving symbolic links),
    so that every message shows where ganforge looked."""
    given = Path(path)
    p = Path(os.path.abspath(given.expanduser()))
    if not given.expanduser().is_absolute():
        logger.info("data.%s %r is relative: read from %s (resolved against the current directory)", param, path, p)
    return p


def _selection(n_total: int, options: ImageOptions, source: str) -> range:
    """The indices of the source's examples that ``subset`` and ``limit`` keep."""
    start, stop = 0, n_total
    if options.subset is not None:
        start, stop = options.subset
        if not start < stop <= n_total:
            raise DataError(f"{source}: data.subset [{start}, {stop}) must satisfy start < stop <= {n_total} "
                            f"(the number of examples)")
    if options.limit is not None:
        stop = min(stop, start + options.limit)
    return range(start, stop)


def _check_fits(n: int, c: int, h: int, w: int, source: str) -> None:
    """Refuse a set whose float32 copy would not fit in memory (streaming is not supported yet)."""
    need = n * c * h * w * 4
    avail = available_memory_bytes()
    if need > MEMORY_FRACTION * avail:
        gib = 1 << 30
        raise DataError(f"{source}: {n} images of {c}x{h}x{w} need {need / gib:.1f} GiB as float32, more than "
                        f"{MEMORY_FRACTION:.0%} of the {avail / gib:.1f} GiB available; streaming from disk is "
                        "not supported yet: lower data.resolution or use data.subset / data.limit")


def _square_box(width: int, height: int) -> tuple[float, float, float, float]:
    """The centred square of side min(width, height), in source pixel coordinates."""
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


def _resize_pil(img: Image.Image, resolution: int) -> Image.Image:
    """Scale the shorter side to ``resolution`` and centre-crop to a square, in one resampling."""
    if img.size == (resolution, resolution):
        return img
    return img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=_square_box(*img.size))


def _resize_array(images: np.ndarray, resolution: int) -> np.ndarray:
    """``(N, H, W, C)`` float32 in [0, 1] -> ``(N, R, R, C)``, channel by channel with Pillow."""
    n, h, w, c = images.shape
    if (h, w) == (resolution, resolution):
        return images
    out = np.empty((n, resolution, resolution, c), dtype=np.float32)
    for i in range(n):
        for k in range(c):
            out[i, :, :, k] = np.asarray(_resize_pil(Image.fromarray(images[i, :, :, k]), resolution))
    return np.clip(out, 0.0, 1.0, out=out)


def _convert_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """``(N, H, W, C)`` with C in {1, 3} -> ``(N, H, W, channels)`` (grey replicated, or luma)."""
    c = images.shape[-1]
    if channels is None or channels == c:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    return (images @ np.asarray(LUMA, dtype=images.dtype))[..., None].astype(images.dtype)


def _to_tensor(images: np.ndarray) -> Tensor:
    """``(N, H, W, C)`` uint8, or float32 in [0, 1] -> ``(N, C, H, W)`` float32 in [-1, 1]."""
    x = torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2)
    if images.dtype == np.uint8:
        return (x.float() / 127.5 - 1.0).contiguous()
    return (x.float() * 2.0 - 1.0).contiguous()


def _finish(images: np.ndarray, targets: np.ndarray | None, n_classes: int, options: ImageOptions,
            source: str, class_names: list[str] | None = None) -> ImageDataset:
    """Channels, resolution and scaling of ``(N, H, W, C)`` images (uint8, or float32 in [0, 1]);
    the caller has checked with ``_check_fits`` that the result fits in memory."""
    n = images.shape[0]
    images = _convert_channels(images, options.channels)
    if options.resolution is not None:
        images = _resize_array(images.astype(np.float32) / (255.0 if images.dtype == np.uint8 else 1.0),
                               options.resolution)
    examples = _to_tensor(images)
    labels = None if targets is None else torch.from_numpy(np.asarray(targets, dtype=np.int64))
    logger.info("%s: %d images of %s (%.1f MiB as float32)", source, n, tuple(examples.shape[1:]),
                examples.numel() * 4 / 2**20)
    return ImageDataset(examples, labels, n_classes, options, source, class_names)


def _check_labels(labels: np.ndarray, n: int, n_classes: int | None, source: str) -> tuple[np.ndarray, int]:
    """Labels must be ``(n,)`` integers (or integral floats) in [0, n_classes); returns (int64, n_classes)."""
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise DataError(f"{source}: labels have shape {labels.shape}, expected ({n},), one per image")
    if labels.dtype.kind == "f":
        bad = ~np.isfinite(labels)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(f"{source}: label at index {i} is {labels[i]}; labels must be integers")
        frac = labels != np.round(labels)
        if frac.any():
            i = int(np.argmax(frac))
            raise DataError(f"{source}: label at index {i} is {labels[i]}; labels must be integers")
    elif labels.dtype.kind not in "iu":
        raise DataError(f"{source}: labels have dtype {labels.dtype}, expected integers")
    labels = labels.astype(np.int64)
    k = int(labels.max()) + 1 if n_classes is None else n_classes
    bad = (labels < 0) | (labels >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{source}: label at index {i} is {labels[i]}, expected an integer in [0, {k})")
    return labels, k


# -- array sources ---------------------------------------------------------------------------------

def _array_images(array: np.ndarray, layout: str, source: str, value_range: tuple[float, float] | None,
                  select: range, options: ImageOptions) -> np.ndarray:
    """Validate an image array in ``layout`` and return the selected images as ``(N, H, W, C)``,
    uint8 or float32 in [0, 1]. Only the selected images are read (``.npy`` files are memory-mapped)."""
    expected = {"NHW": "(N, H, W)", "NHWC": "(N, H, W, C) with C = 1 or 3", "NCHW": "(N, C, H, W) with C = 1 or 3"}
    h_axis, w_axis, c_axis = {"NHW": (1, 2, None), "NHWC": (1, 2, 3), "NCHW": (2, 3, 1)}[layout]
    if array.ndim != len(layout) or (c_axis is not None and array.shape[c_axis] not in (1, 3)) \
            or 0 in array.shape[1:]:
        raise DataError(f"{source}: images have shape {array.shape}, expected {expected[layout]} "
                        f"for data.layout={layout}")
    if array.dtype not in (np.uint8, np.uint16) and array.dtype.kind != "f":
        raise DataError(f"{source}: images have dtype {array.dtype}, expected uint8, uint16 or float")
    h, w = array.shape[h_axis], array.shape[w_axis]
    c = 1 if c_axis is None else array.shape[c_axis]
    side_h, side_w = (options.resolution, options.resolution) if options.resolution else (h, w)
    _check_fits(len(select), options.channels or c, side_h, side_w, source)
    part = np.asarray(array[select.start : select.stop])
    if layout == "NHW":
        part = part[..., None]
    elif layout == "NCHW":
        part = part.transpose(0, 2, 3, 1)
    if part.dtype in (np.uint8, np.uint16):
        if value_range is not None:
            raise DataError(f"{source}: data.value_range is for float images; uint8 images are read as 0..255, "
                            "uint16 ones as 0..65535")
        return part if part.dtype == np.uint8 else part.astype(np.float32) / np.float32(65535.0)
    lo, hi = value_range if value_range is not None else (0.0, 1.0)
    flat = part.reshape(part.shape[0], -1)
    bad = ~np.isfinite(flat).all(axis=1)
    if bad.any():
        i = select.start + int(np.argmax(bad))
        raise DataError(f"{source}: image at index {i} has NaN or infinite values")
    tol = 1e-6 * (hi - lo)
    bad = (flat.min(axis=1) < lo - tol) | (flat.max(axis=1) > hi + tol)
    if bad.any():
        j = int(np.argmax(bad))
        raise DataError(f"{source}: image at index {select.start + j} has values in "
                        f"[{flat[j].min():.4g}, {flat[j].max():.4g}], expected float images in [{lo:g}, {hi:g}] "
                        "(set data.value_range)")
    return np.clip((part.astype(np.float32) - lo) / (hi - lo), 0.0, 1.0)


def _from_arrays(images: np.ndarray, labels: np.ndarray | None, layout: str, options: ImageOptions,
                 source: str, labels_source: str, value_range: tuple[float, float] | None = None,
                 n_classes: int | None = None, class_names: list[str] | None = None) -> ImageDataset:
    n_total = images.shape[0] if images.ndim else 0
    if n_total == 0:
        raise DataError(f"{source}: holds no images (shape {images.shape})")
    select = _selection(n_total, options, source)
    k = 0
    if labels is not None:
        labels, k = _check_labels(labels, n_total, n_classes, labels_source)
        labels = labels[select.start : select.stop]
    part = _array_images(images, layout, source, value_range, select, options)
    return _finish(part, labels, k, options, source, class_names)


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r", allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array of numbers ({str(exc).splitlines()[0]})") from None


def _npz_member_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of array ``key`` of an .npz archive, read from its .npy header alone
    (``np.load`` of an .npz decompresses a member in full when it is read)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(member)
        else:  # 2.0, and 3.0 (a UTF-8 header of the same layout; numpy writes ASCII names there)
            shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    return tuple(int(d) for d in shape), np.dtype(dtype)


def _check_npz_member_fits(path: Path, key: str) -> None:
    """Refuse an .npz member whose decompressed size (its header's shape x dtype) does not fit in
    memory, without decompressing it."""
    try:
        shape, dtype = _npz_member_header(path, key)
    except (ValueError, OSError, EOFError, KeyError, zlib.error, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}[{key}]: unreadable array header ({str(exc).splitlines()[0]})") from None
    need = math.prod(shape) * dtype.itemsize
    check_memory(need, f"{path}[{key}]", f"its array of shape {shape} and dtype {dtype} would, decompressed,",
                 "store the images as an uncompressed .npy file (memory-mapped: only the selected images are read) "
                 "or a smaller archive", available_memory_bytes())


@image_source("image_array")
def image_array(path: str, layout: Literal["NHW", "NHWC", "NCHW"], images_key: str = "images",
                labels_key: str | None = None, labels_path: str | None = None,
                n_classes: PositiveInt | None = None,  # None: the largest label + 1
                value_range: tuple[float, float] | None = None,  # of float images; None: [0, 1]
                *, options: ImageOptions) -> ImageDataset:
    """Images (uint8, uint16 read as 0..65535, or float in ``value_range``) from a ``.npy`` file, or
    from ``images_key`` of a ``.npz`` file; labels from ``labels_key`` of the .npz or from a separate
    ``labels_path`` .npy."""
    p = data_path(path, "path")
    if value_range is not None and not value_range[1] > value_range[0]:
        raise DataError(f"{p}: data.value_range must be [low, high] with high > low, got {list(value_range)}")
    labels = None
    labels_source = str(p)
    if p.suffix == ".npz":
        try:
            archive = np.load(p, allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{p}: array file not found") from None
        except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
            raise DataError(f"{p}: not a readable .npz archive ({str(exc).splitlines()[0]})") from None
        with archive:
            keys = list(archive.files)
            for key in (images_key, labels_key):
                if key is not None and key not in keys:
                    raise DataError(f"{p}: no array {key!r}; the archive holds {keys}")
            for key in (images_key, labels_key):  # before decompressing anything
                if key is not None:
                    _check_npz_member_fits(p, key)
            try:
                images = archive[images_key]
                labels = archive[labels_key] if labels_key is not None else None
            except (ValueError, OSError, EOFError, zlib.error, zipfile.BadZipFile) as exc:
                raise DataError(f"{p}: an array of the archive is unreadable ({str(exc).splitlines()[0]})") from None
        labels_source = f"{p}[{labels_key}]"
        source = f"{p}[{images_key}]"
    elif p.suffix == ".npy":
        if labels_key is not None:
            raise DataError(f"{p}: data.labels_key is for .npz archives; give a .npy file's labels as data.labels_path")
        images = _load_npy(p, "array")
        source = str(p)
    else:
        raise DataError(f"{p}: unsupported array file type {p.suffix!r}; expected .npy or .npz")
    if labels_path is not None:
        if labels is not None:
            raise DataError(f"{p}: give labels either as data.labels_key or as data.labels_path, not both")
        labels = _load_npy(data_path(labels_path, "labels_path"), "labels")
        labels_source = str(labels_path)
    if labels is not None and labels.ndim >= 1 and images.ndim >= 1 and labels.shape[0] != images.shape[0]:
        raise DataError(f"{labels_source}: {labels.shape[0]} labels for {images.shape[0]} images in {source}")
    return _from_arrays(images, labels, layout, options, source, labels_source, value_range, n_classes)


# -- IDX (MNIST) -----------------------------------------------------------------------------------

def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or not) as a uint8 array, after checking its magic
    number, that the size its header claims fits in memory (before reading or decompressing the
    data: a gzip file is decompressed as a stream), and that its size matches that header exactly."""
    p = Path(path)  # callers pass data_path()s; tools may pass their own
    ndim = magic & 0xFF
    kind = "images (N, H, W)" if magic == IDX_IMAGES_MAGIC else "labels (N,)"
    try:
        f = open(p, "rb")  # noqa: SIM115  (closed below)
    except FileNotFoundError:
        raise DataError(f"{p}: IDX file not found") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read ({exc.strerror})") from None
    with f:
        gz = f.read(2) == b"\x1f\x8b"
        f.seek(0)
        stream: Any = gzip.GzipFile(fileobj=f, mode="rb") if gz else f
        try:
            head = stream.read(4)
            if len(head) < 4:
                raise DataError(f"{p}: {len(head)} bytes, too short for an IDX header; expected an IDX file of {kind}")
            found = int.from_bytes(head, "big")
            if found != magic:
                raise DataError(f"{p}: magic number 0x{found:08x}, expected 0x{magic:08x} (IDX {kind} of unsigned bytes)")
            header = 4 + 4 * ndim
            head += stream.read(header - 4)
            if len(head) < header:
                raise DataError(f"{p}: {len(head)} bytes, shorter than its {header}-byte IDX header")
            dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            size = math.prod(dims)
            check_memory(size, str(p), f"the {size:,} bytes of dimensions {dims} in its header would",
                         "is the file damaged? (MNIST's training images are 60000 x 28 x 28)", available_memory_bytes())
            expected = header + size
            if not gz:
                total = os.fstat(f.fileno()).st_size
                payload = f.read(size) if total == expected else b""
            else:
                payload = stream.read(size + 1)
                total = header + len(payload)
        except (OSError, EOFError, zlib.error) as exc:
            if gz:
                raise DataError(f"{p}: damaged gzip file ({exc})") from None
            raise DataError(f"{p}: cannot read ({exc})") from None
    if total != expected:
        what = "truncated" if total < expected else "has extra bytes"
        shown = f"more than {expected}" if gz and total > expected else str(total)
        raise DataError(f"{p}: {shown} bytes{' once decompressed' if gz else ''}, expected {expected} for dimensions "
                        f"{dims} (the file {what})")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def _from_idx(images_path: Path, labels_path: Path | None, options: ImageOptions, n_classes: int | None,
              class_names: list[str] | None = None) -> ImageDataset:
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    labels = None
    if labels_path is not None:
        labels = read_idx(labels_path, IDX_LABELS_MAGIC)
        if labels.shape[0] != images.shape[0]:
            raise DataError(f"{labels_path}: {labels.shape[0]} labels for {images.shape[0]} images in {images_path}")
    return _from_arrays(images, labels, "NHW", options, str(images_path), str(labels_path), None, n_classes,
                        class_names)


@image_source("idx")
def idx(images: str, labels: str | None = None, *, options: ImageOptions) -> ImageDataset:
    """An IDX images file (magic 0x00000803) and an optional IDX labels file (0x00000801), gzipped
    or not; the number of classes is the largest label + 1."""
    return _from_idx(data_path(images, "images"), None if labels is None else data_path(labels, "labels"),
                     options, None)


@image_source("mnist")
def mnist(path: str, split: Literal["train", "test"] = "train", *, options: ImageOptions) -> ImageDataset:
    """MNIST from its IDX files in the directory ``path``: ``train-images-idx3-ubyte[.gz]`` and
    ``train-labels-idx1-ubyte[.gz]`` (split train, 60,000) or ``t10k-*`` (split test, 10,000).
    Nothing is downloaded: get the files from the MNIST page and point ``data.path`` at them."""
    images, labels = mnist_idx_files(path, split)
    return _from_idx(images, labels, options, 10, [str(d) for d in range(10)])


def mnist_idx_files(path: str, split: str) -> tuple[Path, Path]:
    """The images and labels IDX files of MNIST's ``split`` (train or test, gzipped or not) in the
    directory ``path``; a DataError naming what is there when they are not."""
    root = data_path(path, "path")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; data.path must be the directory holding MNIST's IDX files")
    prefix = {"train": "train", "test": "t10k"}[split]

    def find(stem: str) -> Path:
        for name in (f"{stem}.gz", stem):
            if (root / name).is_file():
                return root / name
        present = sorted(q.name for q in root.iterdir() if "idx" in q.name)
        hint = " (set data.split=test)" if split == "train" and any(n.startswith("t10k") for n in present) else ""
        raise DataError(f"{root / stem}[.gz]: not found for split {split!r}; the directory holds "
                        f"{present or 'no IDX files'}{hint}")

    return find(f"{prefix}-images-idx3-ubyte"), find(f"{prefix}-labels-idx1-ubyte")


# -- built-in sets ---------------------------------------------------------------------------------

@image_source("digits")
def digits(*, options: ImageOptions) -> ImageDataset:
    """scikit-learn's handwritten digits: 1,797 grey 8x8 images, values 0..16, labels 0..9."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return _from_arrays(data.images, data.target, "NHW", options, "sklearn load_digits", "sklearn load_digits",
                        (0.0, 16.0), 10, [str(d) for d in range(10)])


@image_source("faces")
def faces(*, options: ImageOptions) -> ImageDataset:
    """The face crops of scikit-image's LFW subset: 100 grey 25x25 images in [0, 1], no labels
    (the subset's other 100 images, background crops, are left out)."""
    try:
        from skimage.data import lfw_subset
    except ImportError:
        raise DataError("faces: needs scikit-image (pip install scikit-image)") from None
    images = np.asarray(lfw_subset())[:100]
    if images.dtype == np.uint8:
        return _from_arrays(images, None, "NHW", options, "skimage lfw_subset", "")
    return _from_arrays(images, None, "NHW", options, "skimage lfw_subset", "", (0.0, 1.0))


# -- image folders ---------------------------------------------------------------------------------

def _list_images(root: Path) -> list[Path]:
    if not root.exists():
        raise DataError(f"{root}: image folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: not a directory; data.path must be a folder of images")
    files = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()
             and not any(part.startswith(".") for part in p.relative_to(root).parts)]
    if not files:
        raise DataError(f"{root}: no images found (looked for {', '.join(IMAGE_SUFFIXES)} files, recursively)")
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


# Pillow modes an image file may open in, by how they are read (anything else is refused by name).
_GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
_COLOUR_MODES = {"RGB", "RGBX", "RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr"}
_MODE_NAMES = {"LAB": "CIE L*a*b*", "HSV": "hue, saturation, value", "I;16S": "signed 16-bit",
               "I;32": "32-bit integer", "BGR;15": "15-bit BGR", "BGR;16": "16-bit BGR", "BGR;24": "24-bit BGR"}


def _composite_on_white(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``colour`` (H, W, k) and ``alpha`` (H, W) uint8 -> (H, W, k) float32 in [0, 1]: the image
    laid over a white background, ``c * a + 1 * (1 - a)`` with c and a scaled to [0, 1]; a fully
    opaque image is returned as its uint8 colours (the composite changes nothing)."""
    if bool((alpha == 255).all()):
        return np.ascontiguousarray(colour)
    a = alpha.astype(np.float32)[..., None] / 255.0
    return colour.astype(np.float32) / 255.0 * a + (1.0 - a)


def image_pixels(img: Image.Image, name: str | Path) -> np.ndarray:
    """The pixels of an opened image as ``(H, W, k)``, k = 1 (grey modes) or 3 (colour modes):
    uint8 for 8-bit images (0..255), else float32 in [0, 1], each scaled by its real bit depth.

    - ``1`` (1-bit): 0 or 255; ``L``: as stored; ``RGB``, ``RGBX``, ``YCbCr``: Pillow's RGB.
    - ``I;16``, ``I;16L``, ``I;16B``, ``I;16N`` (16-bit grey): value / 65535. ``I`` (32-bit integer,
      which is how Pillow reads some 16-bit files): value / 65535, refused if a value lies outside
      0..65535. ``F`` (32-bit float): taken as intensities in [0, 1], refused outside [0, 1] or
      non-finite (its scale is not recorded in the file).
    - ``P`` (palette): the palette's RGB colours; with a transparent palette entry, or ``PA``, as RGBA.
    - ``CMYK``: Pillow's conversion, ``R = (255 - C)(255 - K) / 255`` (likewise G, B); no ICC profile.
    - Alpha (``RGBA``, ``RGBa``, ``LA``, ``La``, ``PA``, transparent ``P``): the image is composited
      on a **white** background, ``c * a + (1 - a)``, as an image viewer shows it (transparent
      pixels become white whatever colour they store); the result is float32 (uint8 colours when
      every pixel is opaque).

    Pillow reads 16-bit colour PNGs (RGB, RGBA) at 8 bits per channel (the high byte), and a 16-bit
    grey+alpha PNG as RGBA.

    Raises DataError naming ``name`` and the mode for any other mode (e.g. ``LAB``, ``HSV``) and for
    ``I`` / ``F`` values outside the range above.
    """
    mode = img.mode
    if mode in ("1", "L"):
        return np.asarray(img.convert("L"))[..., None]
    if mode in ("RGB", "RGBX", "YCbCr", "CMYK") or (mode == "P" and "transparency" not in img.info):
        return np.asarray(img.convert("RGB"))
    if mode in ("RGBA", "RGBa", "PA", "P"):
        rgba = np.asarray(img.convert("RGBA"))
        return _composite_on_white(rgba[..., :3], rgba[..., 3])
    if mode in ("LA", "La"):
        la = np.asarray(img.convert("LA"))
        return _composite_on_white(la[..., :1], la[..., 1])
    if mode.startswith("I;16") and mode in _GREY_MODES:
        return (np.asarray(img).astype(np.float32) / 65535.0)[..., None]
    if mode == "I":
        values = np.asarray(img)
        lo, hi = int(values.min()), int(values.max())
        if lo < 0 or hi > 65535:
            raise DataError(f"{name}: image mode I (32-bit integer) with values in [{lo}, {hi}]; only 16-bit "
                            "values 0..65535 are read (convert the image to 8 or 16 bits per channel)")
        return (values.astype(np.float32) / 65535.0)[..., None]
    if mode == "F":
        values = np.asarray(img, dtype=np.float32)
        if not np.isfinite(values).all() or values.min() < 0.0 or values.max() > 1.0:
            lo, hi = float(np.nanmin(values)), float(np.nanmax(values))
            raise DataError(f"{name}: image mode F (32-bit float) with values in [{lo:.4g}, {hi:.4g}]"
                            f"{'' if np.isfinite(values).all() else ' and NaN or infinite values'}; float images "
                            "are read as intensities in [0, 1]")
        return values[..., None].copy()
    what = f" ({_MODE_NAMES[mode]})" if mode in _MODE_NAMES else ""
    raise DataError(f"{name}: image mode {mode}{what} is not supported; supported modes: "
                    f"{', '.join(sorted(_GREY_MODES | _COLOUR_MODES))}")


def _decode(path: Path, channels: int | None, resolution: int | None) -> tuple[np.ndarray, int]:
    """One image file -> ``(H, W, C)`` (uint8 for 8-bit images, else float32 in [0, 1]; see
    ``image_pixels``) and its channel count; raises the reader's error or a DataError."""
    with Image.open(path) as img:
        img.load()
        arr = image_pixels(img, path)
    c = channels or arr.shape[2]
    if arr.dtype == np.uint8:  # Pillow's 8-bit conversions and resampling, as before issue 11
        img = Image.fromarray(arr[..., 0] if arr.shape[2] == 1 else arr)
        if c != arr.shape[2]:
            img = img.convert("L" if c == 1 else "RGB")
        if resolution is not None:
            img = _resize_pil(img, resolution)
        out = np.asarray(img)
        return (out[..., None] if out.ndim == 2 else out), c
    arr = _convert_channels(arr[None], c)
    if resolution is not None:
        arr = _resize_array(arr, resolution)
    return arr[0], c


@image_source("image_folder")
def image_folder(path: str, labels_from_subfolders: bool = False, skip_corrupt: bool = False,
                 *, options: ImageOptions) -> ImageDataset:
    """PNG/JPEG files under ``path`` (recursively, sorted by path). With ``labels_from_subfolders``
    the class of an image is its first-level subfolder (classes in sorted name order). Without
    ``resolution`` all images must have one size. ``skip_corrupt`` skips unreadable files (logged
    with their names) instead of raising."""
    root = data_path(path, "path")
    files = _list_images(root)
    targets = class_names = None
    if labels_from_subfolders:
        parts = [f.relative_to(root).parts for f in files]
        for f, pp in zip(files, parts, strict=True):
            if len(pp) < 2:
                raise DataError(f"{f}: not inside a class subfolder of {root} (data.labels_from_subfolders is true)")
        class_names = sorted({pp[0] for pp in parts})
        index = {name: i for i, name in enumerate(class_names)}
        targets = np.asarray([index[pp[0]] for pp in parts], dtype=np.int64)
    select = _selection(len(files), options, str(root))
    files = files[select.start : select.stop]
    if targets is not None:
        targets = targets[select.start : select.stop]
    out: np.ndarray | None = None
    kept: list[int] = []
    skipped: list[Path] = []
    reasons: list[str] = []
    channels = options.channels
    for i, f in enumerate(files):
        try:
            arr, channels = _decode(f, channels, options.resolution)
        except DataError as exc:  # a readable image that is refused (its mode or values), named
            if not skip_corrupt:
                raise
            skipped.append(f)
            reasons.append(str(exc))
            continue
        except _UNREADABLE as exc:
            if not skip_corrupt:
                raise DataError(f"{f}: unreadable or damaged image ({str(exc).splitlines()[0]}); "
                                "set data.skip_corrupt=true to skip such files") from None
            skipped.append(f)
            reasons.append(f"{f} ({str(exc).splitlines()[0]})")
            continue
        if out is None:
            _check_fits(len(files), arr.shape[2], arr.shape[0], arr.shape[1], str(root))
            out = np.empty((len(files), *arr.shape), dtype=np.uint8)
        if arr.shape != out.shape[1:]:
            raise DataError(f"{f}: image of {arr.shape[1]}x{arr.shape[0]} pixels, but the first one is "
                            f"{out.shape[2]}x{out.shape[1]}; set data.resolution to resize them all")
        if arr.dtype != out.dtype:  # a 16-bit, float or alpha image: keep every image as float in [0, 1]
            if out.dtype == np.uint8:
                out = out.astype(np.float32) / np.float32(255.0)
            else:
                arr = arr.astype(np.float32) / np.float32(255.0)
        out[len(kept)] = arr
        kept.append(i)
    if skipped:
        logger.warning("%s: skipped %d unreadable image(s): %s", root, len(skipped), "; ".join(reasons))
    if out is None:
        raise DataError(f"{root}: none of its {len(files)} image files could be read")
    out = out[: len(kept)]
    if targets is not None:
        targets = targets[kept]
    # decoding already applied channels and resolution
    dataset = _finish(out, targets, len(class_names or []), dataclasses.replace(options, resolution=None),
                      str(root), class_names)
    dataset.skipped_files = tuple(str(f) for f in skipped)
    return dataset
