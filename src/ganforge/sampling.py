"""Using a trained generator: image grids, latent interpolation, InfoGAN traversals, sample files."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import GanforgeError
from ganforge.io import atomic_open
from ganforge.run import TrainedGenerator


def to_uint8_images(x: Tensor | np.ndarray, value_range: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """``x (N, C, H, W)`` in ``value_range`` -> ``(N, H, W, C)`` uint8."""
    a = x.detach().float().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x, dtype=np.float32)
    if a.ndim != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {a.shape}")
    lo, hi = value_range
    a = np.clip((a - lo) / (hi - lo), 0.0, 1.0)
    return np.round(a * 255.0).astype(np.uint8).transpose(0, 2, 3, 1)


def image_grid(x: Tensor | np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile ``x (N, C, H, W)`` into one ``(rows*(H+pad)+pad, cols*(W+pad)+pad, C)`` uint8 image;
    ``nrow`` images per row (default: a square-ish grid)."""
    imgs = to_uint8_images(x)
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


@torch.no_grad()
def write_samples(G: TrainedGenerator, n: int, out: str | Path, seed: int = 0, class_label: int | None = None,
                  truncation: float | None = None) -> dict:
    """Write ``n`` samples to ``out``: ``.npy`` (array), ``.npz`` (samples and labels), ``.png``
    (one grid; for a conditional generator without ``class_label``, one row per class), or a
    directory (one PNG per sample; a path ending in ``/`` or an existing directory)."""
    check_class(G, class_label)
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
    labels = None
    per_row = None
    if G.n_classes and class_label is None and suffix == ".png":
        per_row = max(1, n // G.n_classes)  # a row per class
        labels = torch.arange(G.n_classes).repeat_interleave(per_row)
        n = labels.numel()
    elif G.n_classes:
        labels = torch.full((n,), class_label, dtype=torch.long) if class_label is not None else \
            torch.randint(G.n_classes, (n,), generator=torch.Generator().manual_seed(seed + 1))
    x = G.sample(n, seed=seed, y=labels, truncation=truncation)
    if suffix == ".npy":
        with atomic_open(path, "wb") as f:
            np.save(f, x.numpy(), allow_pickle=False)
    elif suffix == ".npz":
        arrays = {"samples": x.numpy()}
        if labels is not None:
            arrays["labels"] = labels.numpy()
        with atomic_open(path, "wb") as f:
            np.savez(f, **arrays)
    elif suffix == ".png":
        save_png(image_grid(x, nrow=per_row), path, scale=_scale(x))
    else:
        path.mkdir(parents=True, exist_ok=True)
        for i, img in enumerate(to_uint8_images(x)):
            save_png(img, path / f"sample_{i:06d}.png")
    return {"out": out_s, "n": n, "shape": list(x.shape), "seed": seed,
            **({"class": class_label} if class_label is not None else {})}


def _scale(x: Tensor) -> int:
    """Upscale small images so a grid is legible (8x8 digits -> 4x)."""
    return max(1, 64 // x.shape[-1])
