"""TrainState's random streams: the CUDA states are checkpointed and restored (issue 11, point 9)."""

from __future__ import annotations

import torch
from tiny_ring import tiny_ring

import ganforge
from ganforge.train.checkpoint import load_checkpoint, save_checkpoint
from ganforge.train.trainer import Trainer


def fresh_state():
    return Trainer(ganforge.config_from_dict(tiny_ring(device="cpu"))).setup()


def fake_states(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    return [torch.randint(0, 256, (16,), generator=g, dtype=torch.uint8) for _ in range(n)]


class FakeCuda:
    """torch.cuda as seen by TrainState on a machine with ``n`` GPUs in use."""

    def __init__(self, monkeypatch, n: int, states: list[torch.Tensor]):
        self.states, self.set_calls = states, []
        monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
        monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        monkeypatch.setattr(torch.cuda, "get_rng_state_all", lambda: [s.clone() for s in self.states])
        monkeypatch.setattr(torch.cuda, "set_rng_state", lambda s, device: self.set_calls.append((device, s.clone())))


def test_cuda_random_states_are_saved_and_restored_on_every_device(monkeypatch, tmp_path):
    # fails on b6bd8ea: the checkpoint held no CUDA state
    s = fresh_state()
    written = fake_states(2)
    FakeCuda(monkeypatch, 2, written)
    path = save_checkpoint(tmp_path / "c.safetensors", s.state_dict(), "h")
    state = load_checkpoint(path)
    assert len(state["cuda_rng"]) == 2 and all(torch.equal(a, b) for a, b in zip(state["cuda_rng"], written, strict=True))
    cuda = FakeCuda(monkeypatch, 2, fake_states(5))  # a fresh process: other states until restored
    fresh_state().load_state_dict(state)
    assert [d for d, _ in cuda.set_calls] == [0, 1]
    assert all(torch.equal(got, want) for (_, got), want in zip(cuda.set_calls, written, strict=True))


def test_without_cuda_the_states_are_kept_for_the_next_checkpoint(tmp_path):
    # a GPU run resumed on a CPU machine: the CPU run draws nothing from them, and writes them back
    assert not torch.cuda.is_available()
    s = fresh_state()
    state = s.state_dict()
    assert "cuda_rng" not in state  # nothing to record on a CPU machine
    written = fake_states(3)
    state["cuda_rng"] = written
    resumed = fresh_state()
    resumed.load_state_dict(state)
    again = load_checkpoint(save_checkpoint(tmp_path / "c.safetensors", resumed.state_dict(), "h"))
    assert len(again["cuda_rng"]) == 3 and all(torch.equal(a, b) for a, b in zip(again["cuda_rng"], written, strict=True))


def test_checkpoint_without_cuda_states_loads(monkeypatch):
    s = fresh_state()
    state = s.state_dict()
    state.pop("cuda_rng", None)
    cuda = FakeCuda(monkeypatch, 1, fake_states(1))
    resumed = fresh_state()
    resumed.load_state_dict(state)
    assert cuda.set_calls == [] and resumed.cuda_rng is None


def test_each_process_continues_the_writers_device_stream(monkeypatch):
    """Rank 0 writes the checkpoint; rank k trains on device k, whose stream drew alike to rank 0's
    device 0. On resume rank k's device takes the state of the writer's device, not rank 0's
    untouched copy of device k's (which would make rank k's draws differ from an uninterrupted run)."""
    from ganforge.train.state import set_cuda_rng_states

    states = fake_states(2)
    cuda = FakeCuda(monkeypatch, 2, fake_states(2))
    set_cuda_rng_states(states, saved_device=0, own_device=1)
    got = dict(cuda.set_calls)
    assert torch.equal(got[1], states[0]) and torch.equal(got[0], states[0])
    cuda.set_calls.clear()
    set_cuda_rng_states(states, saved_device=0, own_device=0)  # one process: every device its own
    got = dict(cuda.set_calls)
    assert torch.equal(got[0], states[0]) and torch.equal(got[1], states[1])
