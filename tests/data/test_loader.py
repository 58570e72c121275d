"""BatchLoader: epochs without repeats, wrap-around, determinism, exact resume, rank shards."""

from __future__ import annotations

import pytest
import torch

from ganforge.data import DATASETS, Dataset
from ganforge.data.loader import BatchLoader
from ganforge.train.checkpoint import load_checkpoint, save_checkpoint


class Arange(Dataset):
    """A finite dataset whose example i is the number i, labelled i mod 3."""

    shape = (1,)
    n_classes = 3

    def __init__(self, n: int = 10):
        self.examples = torch.arange(n).float()[:, None]
        self.labels = torch.arange(n) % 3


def ids(batch) -> list[int]:
    x, y = batch
    assert x.shape[1:] == (1,) and x.dtype == torch.float32
    assert torch.equal(y, x[:, 0].long() % 3)  # labels travel with their examples
    return x[:, 0].long().tolist()


def take(loader: BatchLoader, k: int) -> list[list[int]]:
    return [ids(loader.next()) for _ in range(k)]


def test_every_example_once_per_epoch_with_wrap_around():
    loader = BatchLoader(Arange(10), batch_size=3, seed=0)
    batches = take(loader, 10)  # 30 examples = exactly 3 epochs
    assert all(len(b) == 3 for b in batches)
    flat = [i for b in batches for i in b]
    epochs = [flat[0:10], flat[10:20], flat[20:30]]
    for e in epochs:
        assert sorted(e) == list(range(10))
    assert epochs[0] != epochs[1] or epochs[1] != epochs[2]  # reshuffled each epoch
    # batch 4 (examples 9..11) straddles the first two epochs
    assert batches[3] == [epochs[0][9], epochs[1][0], epochs[1][1]]
    assert epochs[0] != list(range(10))  # shuffled, not in file order


def test_batch_larger_than_the_dataset():
    loader = BatchLoader(Arange(4), batch_size=10, seed=3)
    flat = [i for b in take(loader, 2) for i in b]
    for k in range(5):
        assert sorted(flat[4 * k: 4 * k + 4]) == [0, 1, 2, 3]


def test_deterministic_for_a_seed_and_untouched_by_global_rng():
    a = take(BatchLoader(Arange(10), 4, seed=5), 6)
    torch.manual_seed(123)
    torch.rand(10)
    b = take(BatchLoader(Arange(10), 4, seed=5), 6)
    c = take(BatchLoader(Arange(10), 4, seed=6), 6)
    assert a == b
    assert a != c


@pytest.mark.parametrize("consumed", [0, 1, 2, 3, 5, 10])
def test_resume_mid_epoch_gives_the_same_batches(consumed, tmp_path):
    """10 examples, batch 4: the cut falls at every position of an epoch, including on its end."""
    ref = BatchLoader(Arange(10), 4, seed=1)
    take(ref, consumed)
    state = ref.state_dict()
    expected = take(ref, 8)
    # a loader with another seed, restored from the state, continues exactly like the original
    resumed = BatchLoader(Arange(10), 4, seed=99)
    resumed.load_state_dict(state)
    assert take(resumed, 8) == expected
    # the state is a snapshot (later batches do not change it) and survives a checkpoint file
    path = save_checkpoint(tmp_path / "l.safetensors", {"loader": state}, "h")
    again = BatchLoader(Arange(10), 4, seed=7)
    again.load_state_dict(load_checkpoint(path, "h")["loader"])
    assert take(again, 8) == expected


def test_resume_twice_in_a_row():
    ref = BatchLoader(Arange(10), 3, seed=2)
    expected = take(ref, 12)
    loader = BatchLoader(Arange(10), 3, seed=2)
    got = take(loader, 2)
    for _ in range(5):
        fresh = BatchLoader(Arange(10), 3, seed=0)
        fresh.load_state_dict(loader.state_dict())
        loader = fresh
        got += take(loader, 2)
    assert got == expected


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_rank_shards_are_disjoint_and_cover_each_epoch(world_size):
    n = 12
    per_rank = n // world_size
    epochs = 3
    shards = []
    for rank in range(world_size):
        loader = BatchLoader(Arange(n), batch_size=n, seed=4, rank=rank, world_size=world_size)
        shards.append(take(loader, epochs))  # one batch = one rank's share of an epoch
    for e in range(epochs):
        parts = [set(shards[r][e]) for r in range(world_size)]
        assert all(len(p) == per_rank for p in parts)
        assert set().union(*parts) == set(range(n))
        assert sum(len(p) for p in parts) == n  # disjoint
    # each rank's shard changes from epoch to epoch (the global permutation is reshuffled)
    assert any(set(shards[0][0]) != set(shards[0][e]) for e in range(1, epochs))


def test_distribution_resume_gives_the_same_batches(tmp_path):
    ring = DATASETS.build("ring", {"n_modes": 8}, where="data")
    ref = BatchLoader(ring, 16, seed=3)
    first = ref.next()
    assert first[0].shape == (16, 2)
    state = ref.state_dict()
    expected = [ref.next() for _ in range(3)]
    for restored_state in (state, load_checkpoint(save_checkpoint(tmp_path / "d.safetensors",
                                                                  {"s": state}, "h"))["s"]):
        resumed = BatchLoader(ring, 16, seed=11)
        resumed.load_state_dict(restored_state)
        for (x, y), (ex, ey) in zip([resumed.next() for _ in range(3)], expected, strict=True):
            assert torch.equal(x, ex)
            assert (y is None and ey is None) or torch.equal(y, ey)
    # same seed, same stream; another seed, another stream
    assert torch.equal(BatchLoader(ring, 16, seed=3).next()[0], first[0])
    assert not torch.equal(BatchLoader(ring, 16, seed=4).next()[0], first[0])


def test_distribution_ranks_draw_different_examples():
    ring = DATASETS.build("ring", {}, where="data")
    x0 = BatchLoader(ring, 16, seed=3, rank=0, world_size=2).next()[0]
    x1 = BatchLoader(ring, 16, seed=3, rank=1, world_size=2).next()[0]
    assert not torch.equal(x0, x1)


# -- exact resume with random horizontal flips (issue 11, point 2) ---------------------------------

class Columns(Dataset):
    """A finite dataset of 1x1x3 "images" [3i, 3i+1, 3i+2], labelled i mod 3, flipped at random:
    a flipped example reads [3i+2, 3i+1, 3i], so each batch shows which examples came and which flipped."""

    shape = (1, 1, 3)
    n_classes = 3
    hflip = True

    def __init__(self, n: int = 10):
        self.examples = torch.arange(3 * n).float().view(n, 1, 1, 3)
        self.labels = torch.arange(n) % 3


def flip_batches(loader: BatchLoader, k: int) -> list[torch.Tensor]:
    return [torch.cat([x.flatten(1), y[:, None].float()], 1) for x, y in (loader.next() for _ in range(k))]


@pytest.mark.parametrize(("n", "batch", "world_size"), [(10, 4, 1), (10, 4, 2), (10, 3, 1), (4, 10, 2), (12, 12, 3)])
def test_hflip_state_dict_at_every_position_continues_exactly(n, batch, world_size, tmp_path):
    """Cut after every batch of three epochs (mid-epoch, on an epoch's end, inside a batch that wraps
    into the next epoch, batch larger than the data), reload into a fresh loader (other seed), and
    compare the next 50 batches with the uninterrupted loader's, on every rank."""
    for rank in range(world_size):
        ref = BatchLoader(Columns(n), batch, seed=1, rank=rank, world_size=world_size)
        expected = flip_batches(ref, 3 * n // batch + 1 + 50)
        loader = BatchLoader(Columns(n), batch, seed=1, rank=rank, world_size=world_size)
        for cut in range(3 * n // batch + 1):
            state = loader.state_dict()
            if cut % 3 == 0:  # also through a checkpoint file
                state = load_checkpoint(save_checkpoint(tmp_path / "l.safetensors", {"l": state}, "h"), "h")["l"]
            fresh = BatchLoader(Columns(n), batch, seed=99, rank=rank, world_size=world_size)
            fresh.load_state_dict(state)
            got = flip_batches(fresh, 50)
            for i, (a, b) in enumerate(zip(got, expected[cut : cut + 50], strict=True)):
                assert torch.equal(a, b), f"rank {rank}, cut after {cut} batches: batch {cut + i} differs"
            loader.next()
    # flips do happen, and both ways
    x = torch.cat(flip_batches(BatchLoader(Columns(n), batch, seed=1), 20))
    assert (x[:, 0] < x[:, 2]).any() and (x[:, 0] > x[:, 2]).any()


def test_hflip_does_not_change_the_uninterrupted_stream():
    """The fix adds to the saved state only: the permutations and flips of an uninterrupted run are
    those of the code before issue 11 (one generator: permutation, then each batch's flip draws)."""
    n, batch = 10, 4
    g = torch.Generator().manual_seed(1 * 1_000_003 + 17)
    perm, pos, want = None, n, []
    for _ in range(8):
        idx = []
        while len(idx) < batch:
            if pos == n:
                perm, pos = torch.randperm(n, generator=g), 0
            take_n = min(batch - len(idx), n - pos)
            idx += perm[pos : pos + take_n].tolist()
            pos += take_n
        flip = torch.rand(batch, generator=g) < 0.5
        want.append([(3 * i + 2 if f else 3 * i) for i, f in zip(idx, flip.tolist(), strict=True)])
    got = [b[:, 0].long().tolist() for b in flip_batches(BatchLoader(Columns(n), batch, seed=1), 8)]
    assert got == want


@pytest.mark.parametrize("hflip", [False, True])
def test_loader_state_written_before_issue_11_continues_as_that_code_did(hflip):
    """A state dict of b6bd8ea (keys generator/pos/started: the generator's state before the epoch's
    permutation) loads; without flips it is exact, with flips it continues as b6bd8ea's loader did
    (the stream restarts just after the permutation)."""
    ds = Columns(10) if hflip else Arange(10)
    loader = BatchLoader(ds, 4, seed=1)
    loader.next()
    legacy = {k: v for k, v in loader.state_dict().items() if k in ("generator", "pos", "started")}
    assert legacy["started"] and legacy["pos"] == 4
    resumed = BatchLoader(ds, 4, seed=5)
    resumed.load_state_dict(legacy)
    # what b6bd8ea's loader did: generator to the saved state, permutation, position
    g = torch.Generator()
    g.set_state(legacy["generator"])
    perm = torch.randperm(10, generator=g)
    idx = perm[4:8]
    x, _ = resumed.next()
    if not hflip:
        assert x[:, 0].long().tolist() == idx.tolist()
        assert torch.equal(x, loader.next()[0])
    else:
        flip = torch.rand(4, generator=g) < 0.5
        want = [(3 * i + 2 if f else 3 * i) for i, f in zip(idx.tolist(), flip.tolist(), strict=True)]
        assert x[:, 0, 0, 0].long().tolist() == want
