"""Figures of the game, drawn with matplotlib from a run directory's files."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from ganforge.io import atomic_open  # noqa: E402
from ganforge.metrics.toy import estimate_density_1d, optimal_discriminator  # noqa: E402
from ganforge.rundir import RunDir  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _pick(snaps: list, k: int) -> list:
    if len(snaps) <= k:
        return snaps
    idx = np.unique(np.round(np.linspace(0, len(snaps) - 1, k)).astype(int))
    return [snaps[i] for i in idx]


def figure4(run_dir: str | Path, dataset, out: str | Path, panels: int = 4) -> Path:
    """The GAN tutorial's Figure 4 for a 1-D run: p_data (black), p_model (green), D (blue dashed)
    and the optimal D* = p_data / (p_data + p_model) (grey) at several moments of training."""
    return _save(figure4_figure(run_dir, dataset, panels), Path(out))


def figure4_figure(run_dir: str | Path, dataset, panels: int = 4):
    """The matplotlib figure of ``figure4`` (constrained layout: the title sits above the panels'
    titles, the legend below the panels, where it hides no curve)."""
    snaps = [s for s in RunDir(run_dir).read_snapshots() if "d_grid" in s[1]]
    if not snaps:
        raise ValueError(f"{run_dir} has no 1-D snapshots with D on a grid")
    chosen = _pick(snaps, panels)
    fig, axes = plt.subplots(1, len(chosen), figsize=(4 * len(chosen), 3.6), sharey=True, layout="constrained")
    axes = np.atleast_1d(axes)
    for ax, (step, arr) in zip(axes, chosen, strict=True):
        grid = arr["grid"].astype(np.float64)
        samples = arr["samples"].reshape(-1).astype(np.float64)
        p_data = dataset.prob(torch.as_tensor(grid)).double().numpy()
        p_model = estimate_density_1d(samples, grid)
        d_star = optimal_discriminator(grid, p_data, p_model)
        # D* is only defined where some density is: hide it where both are (numerically) zero
        d_star = np.where(p_data + p_model > 1e-3 * max(p_data.max(), p_model.max()), d_star, np.nan)
        top = max(p_data.max(), 1e-12)
        ax.plot(grid, p_data / top, color="black", lw=1.5, label="p_data")
        ax.plot(grid, p_model / top, color="green", lw=1.5, label="p_model")
        ax.plot(grid, arr["d_grid"].reshape(-1), color="tab:blue", ls="--", lw=1.5, label="D(x)")
        ax.plot(grid, d_star, color="grey", ls=":", lw=1.5, label="D*(x)")
        ax.axhline(0.5, color="lightgrey", lw=0.8)
        ax.set_title(f"step {step}")
        ax.set_ylim(-0.02, 1.15)
        ax.set_xlabel("x")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9, frameon=False)
    fig.suptitle("The GAN game in 1-D (densities scaled to the peak of p_data)")
    return fig


def scatter_over_training(run_dir: str | Path, dataset, out: str | Path, panels: int = 5,
                          ema: bool = True) -> Path:
    """Generated 2-D samples (blue) over the true modes (red) at several moments of training."""
    snaps = RunDir(run_dir).read_snapshots()
    if not snaps:
        raise ValueError(f"{run_dir} has no sample snapshots")
    chosen = _pick(snaps, panels)
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.2 * len(chosen), 3.5), layout="constrained")
    axes = np.atleast_1d(axes)
    modes = getattr(dataset, "modes", None)
    true, _ = dataset.sample(2000, torch.Generator().manual_seed(0))
    lim = float(true.abs().max()) * 1.3
    for ax, (step, arr) in zip(axes, chosen, strict=True):
        x = arr.get("ema_samples") if ema and "ema_samples" in arr else arr["samples"]
        ax.scatter(x[:, 0], x[:, 1], s=2, alpha=0.5, color="tab:blue")
        if modes is not None:
            ax.scatter(modes[:, 0], modes[:, 1], s=12, color="tab:red", marker="x")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.set_title(f"step {step}")
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Generated samples (blue) and the data's modes (red x) over training")
    return _save(fig, Path(out))
