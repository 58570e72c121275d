"""Using a trained generator: image grids, latent interpolation, InfoGAN traversals, sample files.

``image_grid`` here is the one image grid of ganforge (sample files, the HTML report, TensorBoard).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.io import atomic_open, available_memory_bytes

if TYPE_CHECKING:
    from ganforge.run import TrainedGenerator

MEMORY_FRACTION = 0.5  # samples held in memory (.npz, a PNG grid) may use at most this share of free memory
BATCH = 4096  # samples generated at a time


def to_uint8_images(x: Tensor | np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``x (N, C, H, W)`` in ``value_range`` -> ``(N, H, W, C)`` uint8; values outside the range are
    clipped, NaN is drawn as the range's middle."""
    a = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
    if a.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {a.shape}")
    lo, hi = value_range
    a = np.nan_to_num(a, nan=(lo + hi) / 2, posinf=hi, neginf=lo)
    a = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    return np.round(a * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(x: Tensor | np.ndarray, nrow: int | None = None, pad: int = 2,
               value_range: tuple[float, float] = (-1.0, 1.0), rgb: bool = False) -> np.ndarray:
    """Tile ``x (N, C, H, W)`` (C = 1 or 3, values in ``value_range``, clipped) into one
    ``(rows*(H+pad)+pad, cols*(W+pad)+pad, C)`` uint8 image on white, ``nrow`` images per row
    (default: a square-ish grid); ``rgb`` repeats a single channel three times."""
    shape = tuple(x.shape)
    if len(shape) != 4 or shape[1] not in (1, 3) or shape[0] == 0:
        raise ValueError(f"image_grid expects (N, 1 or 3, H, W) images, got shape {shape}")
    imgs = to_uint8_images(x, value_range)
    if rgb and imgs.shape[-1] == 1:
        imgs = np.repeat(imgs, 3, axis=-1)
    n, h, w, c = imgs.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + k * (w + pad): pad + k * (w + pad) + w] = imgs[i]
    return grid


def save_png(image: np.ndarray, path: str | Path, scale: int = 1) -> Path:
    """Write an ``(H, W, C)`` uint8 image as PNG, atomically (nearest-neighbour upscaling by ``scale``)."""
    from PIL import Image

    img = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_open(path, "wb") as f:
        img.save(f, format="PNG")
    return Path(path)


def slerp(z0: Tensor, z1: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between rows of ``z0`` and ``z1`` (N, D) at fractions ``t`` (T,):
    ``(T, N, D)``. Falls back to linear interpolation where the two are (anti)parallel."""
    u0, u1 = z0 / z0.norm(dim=1, keepdim=True), z1 / z1.norm(dim=1, keepdim=True)
    omega = torch.acos((u0 * u1).sum(dim=1).clamp(-1.0, 1.0))  # (N,)
    so = torch.sin(omega)
    t = t.view(-1, 1, 1)
    lin = (1 - t) * z0 + t * z1
    sph = (torch.sin((1 - t) * omega.view(1, -1, 1)) * z0 + torch.sin(t * omega.view(1, -1, 1)) * z1) / \
        so.clamp_min(1e-8).view(1, -1, 1)
    return torch.where((so > 1e-6).view(1, -1, 1), sph, lin)


@torch.no_grad()
def interpolation_grid(G: TrainedGenerator, steps: int = 8, paths: int = 4, seed: int = 0,
                       class_label: int | None = None) -> Tensor:
    """Images along ``paths`` latent paths of ``steps`` points each: ``(paths * steps, C, H, W)``,
    one path per row. Spherical interpolation for Gaussian priors, linear otherwise."""
    g = torch.Generator().manual_seed(seed)
    z0, z1 = G.prior.sample(paths, g), G.prior.sample(paths, g)
    t = torch.linspace(0, 1, steps)
    zs = slerp(z0, z1, t) if G.prior.spherical else (1 - t.view(-1, 1, 1)) * z0 + t.view(-1, 1, 1) * z1
    z = zs.transpose(0, 1).reshape(paths * steps, -1)  # row = path
    return G(z.to(_device(G)), _labels(G, z.shape[0], class_label, g)).float().cpu()


@torch.no_grad()
def infogan_traversals(G: TrainedGenerator, seed: int = 0, steps: int = 10, rows: int = 8) -> dict[str, Tensor]:
    """For each InfoGAN code, a grid that varies only that code along each row (``rows`` rows with
    different noise): categorical code j -> its categories; continuous code j -> values in [-2, 2]."""
    prior = G.prior
    if not hasattr(prior, "with_codes"):
        raise GanforgeError("this run's prior has no InfoGAN codes to traverse (game.prior.name is not infogan)")
    g = torch.Generator().manual_seed(seed)
    out: dict[str, Tensor] = {}
    for j, k in enumerate(prior.categorical):
        z = prior.sample(rows, g).repeat_interleave(k, dim=0)  # row r repeated k times
        z = prior.with_codes(z, categorical={j: torch.arange(k).repeat(rows)})
        out[f"categorical{j}"] = G(z.to(_device(G))).float().cpu()
    for j in range(prior.continuous):
        z = prior.sample(rows, g).repeat_interleave(steps, dim=0)
        z = prior.with_codes(z, continuous={j: torch.linspace(-2, 2, steps).repeat(rows)})
        out[f"continuous{j}"] = G(z.to(_device(G))).float().cpu()
    return out


def _device(G: TrainedGenerator) -> torch.device:
    return next(G.generator.parameters()).device


def _labels(G: TrainedGenerator, n: int, class_label: int | None, g: torch.Generator) -> Tensor | None:
    if not G.n_classes:
        return None
    if class_label is None:
        return torch.randint(G.n_classes, (n,), generator=g).to(_device(G))
    return torch.full((n,), class_label, dtype=torch.long, device=_device(G))


def check_class(G: TrainedGenerator, class_label: int | None) -> None:
    if class_label is None:
        return
    if not G.n_classes:
        raise GanforgeError("--class given, but this generator is not conditional on classes")
    if not 0 <= class_label < G.n_classes:
        raise GanforgeError(f"--class {class_label} is out of range; this generator has classes 0..{G.n_classes - 1}")


def _fits_in_memory(n_bytes: int, what: str) -> None:
    free = available_memory_bytes("cpu")
    if n_bytes > MEMORY_FRACTION * free:
        raise GanforgeError(f"{what} needs about {n_bytes / 2**30:.1f} GiB of memory, more than half of the "
                            f"{free / 2**30:.1f} GiB available; ask for fewer samples (--n), or write a .npy file "
                            "or a folder of PNGs, which are written batch by batch")


def _fits_on_disk(n_bytes: int, path: Path, what: str) -> None:
    probe = path
    while not probe.exists():
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if n_bytes > free:
        raise GanforgeError(f"{what} needs about {n_bytes / 2**30:.1f} GiB of disk, more than the "
                            f"{free / 2**30:.1f} GiB free at {probe}; ask for fewer samples (--n)")


def _npy_header(shape: tuple[int, ...]) -> bytes:
    import io as _io

    buf = _io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                                               "fortran_order": False, "shape": shape})
    return buf.getvalue()


@torch.no_grad()
def write_samples(G: TrainedGenerator, n: int, out: str | Path, seed: int = 0, class_label: int | None = None,
                  truncation: float | None = None) -> dict:
    """Write ``n`` samples to ``out``: ``.npy`` (array), ``.npz`` (samples and labels), ``.png``
    (one grid; for a conditional generator without ``class_label``, one row per class), or a
    directory (one PNG per sample; a path ending in ``/`` or an existing directory).

    A .npy file and a PNG folder are written batch by batch (any ``n`` that fits on the disk); a
    .npz file and a grid are built in memory, and refused when they would not fit."""
    check_class(G, class_label)
    if truncation is not None and not (math.isfinite(truncation) and truncation > 0):
        raise GanforgeError(f"--truncation {truncation}: must be a finite number > 0")
    out_s = str(out)
    path = Path(out)
    is_dir = out_s.endswith("/") or path.is_dir()
    suffix = "" if is_dir else path.suffix.lower()
    allowed = (".npy", ".npz", ".png")
    if not is_dir and suffix not in allowed:
        raise GanforgeError(f"--out {out}: unsupported output {suffix or '(no suffix)'}; allowed: "
                            f"{', '.join(allowed)}, or a directory (ending in /)")
    images = len(G.sample_shape) == 3
    if (suffix == ".png" or is_dir) and not images:
        raise GanforgeError(f"--out {out}: PNG output needs an image generator; this one makes vectors "
                            "(use .npy or .npz)")
    per_sample = 4 * math.prod(G.sample_shape)  # float32 bytes
    labels = None
    per_row = None
    if G.n_classes and class_label is None and suffix == ".png":
        per_row = max(1, n // G.n_classes)  # a row per class
        n = per_row * G.n_classes
    if suffix in (".npz", ".png"):  # held in memory (twice while concatenated), labels too
        _fits_in_memory(n * (2 * per_sample + (8 if G.n_classes else 0)), f"--n {n} samples for {out}")
    elif G.n_classes:
        _fits_in_memory(n * 8, f"the labels of --n {n} samples")
    if suffix == ".npy":
        _fits_on_disk(n * per_sample, path, f"--n {n} samples in {out}")
    elif is_dir:
        _fits_on_disk(n * math.prod(G.sample_shape) // 4, path, f"--n {n} PNG files in {out}")  # PNG: ~1/4 raw
    if per_row is not None:
        labels = torch.arange(G.n_classes).repeat_interleave(per_row)
    elif G.n_classes:
        labels = torch.full((n,), class_label, dtype=torch.long) if class_label is not None else \
            torch.randint(G.n_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))
    batches = G.iter_samples(n, seed=seed, y=labels, batch_size=BATCH, truncation=truncation)
    shape = [n, *G.sample_shape]
    if suffix == ".npy":
        with atomic_open(path, "wb") as f:
            f.write(_npy_header(tuple(shape)))
            for x in batches:
                f.write(np.ascontiguousarray(x.numpy(), dtype=np.float32).tobytes())
    elif suffix == ".npz":
        arrays = {"samples": torch.cat(list(batches)).numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
    elif suffix == ".png":
        x = torch.cat(list(batches))
        save_png(image_grid(x, nrow=per_row), path, scale=_scale(x))
    else:
        path.mkdir(parents=True, exist_ok=True)
        i = 0
        for x in batches:
            for img in to_uint8_images(x):
                save_png(img, path / f"sample_{i:06d}.png")
                i += 1
    return {"out": out_s, "n": n, "shape": shape, "seed": seed,
            **({"class": class_label} if class_label is not None else {})}


def _scale(x: Tensor) -> int:
    """Upscale small images so a grid is legible (8x8 digits -> 4x)."""
    return max(1, 64 // x.shape[-1])
