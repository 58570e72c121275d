"""Atomic save and safe load of training state.

A checkpoint is one safetensors file: every tensor of the state (weights, optimizer moments, RNG
states) stored by name, and the rest of the state (step, hyper-parameters, the config hash) as JSON
in the file's metadata. Loading parses a header and raw tensor bytes: nothing in the file is ever
executed (no pickle).
"""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import safetensors.torch
import torch
from safetensors import SafetensorError

from ganforge.errors import CheckpointError
from ganforge.io import write_bytes_atomic

FORMAT = "ganforge-checkpoint"
VERSION = "1"
_NAME = re.compile(r"^step_(\d{8,})\.safetensors$")


# -- nested state <-> (flat tensors, JSON tree) ------------------------------------------------

def flatten_state(obj: Any, tensors: dict[str, torch.Tensor], prefix: str = "") -> Any:
    """Replace every tensor in a nested structure by a reference; collect tensors by name."""
    if isinstance(obj, torch.Tensor):
        # The running index keeps names unique even when two paths print alike ("a.b" vs a -> b).
        key = f"{len(tensors)}:{prefix}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if all(isinstance(k, str) for k in obj):
            return {k: flatten_state(v, tensors, f"{prefix}.{k}" if prefix else k) for k, v in obj.items()}
        return {"__items__": [[k, flatten_state(v, tensors, f"{prefix}.{k}")] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a checkpoint")


def unflatten_state(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(tree, dict):
        if "__tensor__" in tree:
            return tensors[tree["__tensor__"]]
        if "__items__" in tree:
            return {k: unflatten_state(v, tensors) for k, v in tree["__items__"]}
        if "__tuple__" in tree:
            return tuple(unflatten_state(v, tensors) for v in tree["__tuple__"])
        return {k: unflatten_state(v, tensors) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unflatten_state(v, tensors) for v in tree]
    return tree


# -- files -------------------------------------------------------------------------------------

def checkpoint_path(directory: str | Path, step: int) -> Path:
    return Path(directory) / f"step_{step:08d}.safetensors"


def list_checkpoints(directory: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of the checkpoints in ``directory``, oldest first."""
    d = Path(directory)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _NAME.match(p.name))]
    for _, p in found:
        _check_regular(p)
    return sorted(found)


def _check_regular(path: Path) -> None:
    """Refuse a FIFO, device or socket named like a checkpoint: reading one would hang or never end."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # gone or unreadable: the reader says so
    if not stat.S_ISREG(mode):
        raise CheckpointError(f"{path} is not a regular file (a FIFO, device or socket); a checkpoint must be a "
                              "plain file: move it out of the checkpoints folder")


def save_checkpoint(path: str | Path, state: dict[str, Any], config_hash: str) -> Path:
    """Write ``state`` (a nested dict of tensors and plain values) atomically to ``path``."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    tree = flatten_state(state, tensors)
    meta = {"format": FORMAT, "version": VERSION, "config_hash": config_hash, "tree": json.dumps(tree)}
    data = safetensors.torch.save(tensors, metadata=meta)
    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise CheckpointError(
            f"could not write checkpoint {path}: {exc.strerror or exc}; "
            "the previous checkpoints are unchanged") from None
    return path


def load_checkpoint(path: str | Path, config_hash: str | Sequence[str] | None = None) -> dict[str, Any]:
    """Read a checkpoint written by ``save_checkpoint``; refuse anything else with a clear message.

    ``config_hash``: the config hash the checkpoint must carry, or several that are accepted."""
    path = Path(path)
    _check_regular(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    try:
        tensors = safetensors.torch.load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
    except (SafetensorError, ValueError, OSError, RuntimeError, AttributeError) as exc:
        raise CheckpointError(
            f"{path} is not a readable ganforge checkpoint (damaged, truncated or another format: "
            f"{str(exc).splitlines()[0][:120]}); nothing was loaded") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a ganforge checkpoint; nothing was loaded")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint version {meta.get('version')!r}; "
                              f"this ganforge reads version {VERSION}")
    accepted = (config_hash,) if isinstance(config_hash, str) else tuple(config_hash or ())
    if accepted and meta.get("config_hash") not in accepted:
        raise CheckpointError(f"{path} was written by a different config (hash {meta.get('config_hash')}, "
                              f"expected {accepted[0]}); nothing was loaded")
    try:
        tree = json.loads(meta["tree"])
        return unflatten_state(tree, tensors)
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{path} has a damaged state description ({exc}); nothing was loaded") from None
