"""Distributed data-parallel training on PyTorch's own engine (torchrun + DistributedDataParallel).

``torchrun --nproc_per_node=N -m ganforge train CONFIG --out DIR`` runs the same config on N
processes: gloo on CPU, nccl on GPU. ``train.batch_size`` stays the *global* batch: each process
takes its slice of every global batch of real examples and latent vectors, and DDP averages the
players' gradients, so N processes follow the 1-process trajectory up to floating-point reduction
order, and a checkpoint resumes on any number of processes. Only rank 0 writes files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ganforge.game.games import DiscriminatorPass  # noqa: F401  (where it lived before issue 12)


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_env(device: torch.device | None = None) -> DistInfo:
    """Read torchrun's environment and start the process group (once); 1 process otherwise.

    The backend follows the device the run trains on (``device``; by default CUDA when present):
    nccl for CUDA, gloo otherwise, so ``train.device=cpu`` on a GPU machine still runs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        on_cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
        backend = "nccl" if on_cuda else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank, world, local_rank)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def all_reduce_mean_(t: Tensor, info: DistInfo) -> Tensor:
    if info.enabled:
        dist.all_reduce(t)
        t /= info.world_size
    return t


def all_reduce_max_(t: Tensor, info: DistInfo) -> Tensor:
    if info.enabled:
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def wrap(module: nn.Module, info: DistInfo, device: torch.device) -> nn.Module:
    """DDP around ``module`` when distributed; the module itself otherwise."""
    if not info.enabled or not any(p.requires_grad for p in module.parameters()):
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(module, device_ids=ids)


class CrossProcessBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Batch norm whose training-mode statistics are those of the *global* batch, over all
    processes, on any device (PyTorch's ``nn.SyncBatchNorm`` runs only on GPUs).

    Each process sums x and x^2 per channel over its slice; one differentiable all-reduce
    (``torch.distributed.nn.functional.all_reduce``, whose backward all-reduces the gradients)
    gives the global count, mean and biased variance. The gradient reaching each example therefore
    includes the paths through the shared mean and variance from every process, and DDP's averaged
    weight gradients equal those of one process on the whole batch. The running statistics get the
    global (unbiased) variance, as in ``nn.BatchNorm``; in eval mode it is a plain batch norm.
    Same parameters and buffers as the batch norm it replaces, so checkpoints move freely between
    distributed and single-process runs.
    """

    def _check_input_dim(self, x: Tensor) -> None:
        if x.dim() < 2:
            raise ValueError(f"expected at least 2-D input (N, C, ...), got {x.dim()}-D")

    def forward(self, x: Tensor) -> Tensor:
        # x: (N, C, *) -> (N, C, *)
        self._check_input_dim(x)
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        dims = [0, *range(2, x.dim())]
        xf = x.float()
        local = torch.cat([xf.sum(dims), (xf * xf).sum(dims),
                           xf.new_full((1,), float(x.numel() // c))])  # (2C + 1,)
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n  # (C,)
        var = (total[c : 2 * c] / n - mean * mean).clamp(min=0.0)  # biased, as batch norm normalizes with it
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                assert self.num_batches_tracked is not None
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * n / (n - 1).clamp(min=1.0), m)
        shape = (1, c) + (1,) * (x.dim() - 2)
        out = (xf - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        return out.to(x.dtype)


def convert_sync_batch_norm(module: nn.Module, device: torch.device) -> nn.Module:
    """Every batch norm of ``module`` normalizing with the global batch's statistics:
    ``nn.SyncBatchNorm`` on CUDA, :class:`CrossProcessBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    if isinstance(module, nn.modules.batchnorm._BatchNorm) and not isinstance(module, CrossProcessBatchNorm):
        new = CrossProcessBatchNorm(module.num_features, module.eps, module.momentum, module.affine,
                                    module.track_running_stats, device=device)
        new.load_state_dict(module.state_dict())
        new.train(module.training)
        return new
    for name, child in module.named_children():
        setattr(module, name, convert_sync_batch_norm(child, device))
    return module
