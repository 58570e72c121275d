"""The CTGAN game on a table: training-by-sampling, the players' output heads, the conditional
generator's cross-entropy, and the run-level contract (CSV in, CSV out, same seed same rows, exact
resume, conditional sampling, a run read back without its training file)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from ganforge.cli import main
from ganforge.components import load_config
from ganforge.data.loader import BatchLoader
from ganforge.errors import DataError
from ganforge.run import load_generator, train
from ganforge.tabular import TableSynthesizer
from ganforge.tabular.dataset import TableDataset
from ganforge.tabular.game import ConditionalTableGame
from ganforge.tabular.models import TableDiscriminator, TableGenerator


def table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    group = rng.choice(["a", "b", "c"], n, p=[0.8, 0.17, 0.03])
    x = np.where(group == "a", rng.normal(0, 1, n), rng.normal(8, 1, n)).round(3)
    return pd.DataFrame({"group": group, "x": x, "age": rng.integers(18, 90, n), "flag": rng.random(n) < 0.3})


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "t.csv"
    table().to_csv(path, index=False)
    return path


def small(csv, *extra: str):
    return load_config("tabular", [f"data.path={csv}", "train.steps=12", "train.batch_size=60",
                                   "train.progress=false", "train.log_every=4", "train.checkpoint_every=6",
                                   "model.generator.widths=[32, 32]", "model.discriminator.widths=[32, 32]",
                                   "game.prior.latent_dim=8", *extra])


def test_training_by_sampling_draws_log_frequency_conditions_and_rows_that_have_them(csv):
    data = TableDataset(str(csv))
    layout = data.layout
    cols = [c.column for c in layout.discrete]
    assert cols == ["group", "flag"] and data.n_classes == 3 + 2
    x, y = data.sample(200_000, torch.Generator().manual_seed(0))
    # every row has its condition's category
    offsets = layout.condition_offsets()
    for c in layout.discrete:
        k = offsets[c.column]
        mine = (y >= k) & (y < k + c.width)
        got = x[mine][:, c.start : c.start + c.width].argmax(1) + k
        assert torch.equal(got, y[mine])
    # condition frequencies: a column uniformly, then a category by log(1 + count)
    counts = np.array([c for d in layout.discrete for c in d.frequencies], dtype=float)
    want = np.concatenate([np.log1p(counts[:3]) / np.log1p(counts[:3]).sum() / 2,
                           np.log1p(counts[3:]) / np.log1p(counts[3:]).sum() / 2])
    freq = np.bincount(y.numpy(), minlength=5) / len(y)
    sigma = np.sqrt(want * (1 - want) / len(y))
    assert np.all(np.abs(freq - want) < 5 * sigma), (freq, want)
    # sampling (after training) uses the categories' own frequencies
    assert np.allclose(data.label_probs.numpy(), np.concatenate([counts[:3] / counts[:3].sum(),
                                                                  counts[3:] / counts[3:].sum()]) / 2)


def test_the_loader_draws_its_batches_by_training_by_sampling_and_resumes_exactly(csv):
    data = TableDataset(str(csv))
    a = BatchLoader(data, 50, seed=3)
    a.next()
    state = a.state_dict()
    want = [a.next() for _ in range(3)]
    b = BatchLoader(data, 50, seed=3)
    b.load_state_dict(state)
    for (xa, ya), (xb, yb) in zip(want, [b.next() for _ in range(3)], strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert ya is not None and ya.max() < data.n_classes


def test_generator_heads_follow_the_encoding(csv):
    data = TableDataset(str(csv))
    torch.manual_seed(0)
    G = TableGenerator(8, data.shape, data.n_classes, widths=[16], layout=data.layout)
    y = torch.randint(data.n_classes, (32,))
    out = G(torch.randn(32, 8), y)
    assert out.shape == (32, data.layout.width)
    for s in data.layout.spans:
        block = out[:, s.start : s.start + s.width]
        if s.kind == "tanh":
            assert block.abs().max() < 1
        else:  # Gumbel-softmax: a point of the simplex
            assert torch.allclose(block.sum(1), torch.ones(32), atol=1e-5) and block.min() >= 0
    assert G.condition_logits.shape == (32, data.n_classes)


def test_the_conditional_cross_entropy_is_that_of_the_conditioned_column_alone(csv):
    data = TableDataset(str(csv))
    torch.manual_seed(1)
    G = TableGenerator(8, data.shape, data.n_classes, widths=[16], layout=data.layout)
    y = torch.tensor([0, 2, 3, 4, 1])
    G(torch.randn(5, 8), y)

    class P:
        players = {"generator": G}
        device = torch.device("cpu")

    got = ConditionalTableGame.__new__(ConditionalTableGame)
    got._mask = None
    value = got.generator_extra(P, y)
    logits = G.condition_logits.detach()
    by_hand = []
    for row, c in enumerate(y.tolist()):
        lo, hi = (0, 3) if c < 3 else (3, 5)  # group's block, then flag's
        by_hand.append(-F.log_softmax(logits[row, lo:hi], 0)[c - lo])
    assert value.item() == pytest.approx(torch.stack(by_hand).mean().item(), rel=1e-6)


def test_packed_discriminator_gives_each_row_its_pack_logit():
    D = TableDiscriminator((4,), n_classes=3, widths=[8], pack=2, dropout=0.0)
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    out = D(x, y)
    # pack j holds rows j and j + 3
    for j in range(3):
        h = torch.cat([torch.cat([x[j], F.one_hot(y[j], 3).float()]), torch.cat([x[j + 3], F.one_hot(y[j + 3], 3).float()])])
        assert out[j].item() == pytest.approx(D.net(h[None]).item(), abs=1e-6) == pytest.approx(out[j + 3].item())


def test_csv_in_csv_out_same_seed_same_rows_and_exact_resume(csv, tmp_path, one_thread):
    whole = train(small(csv), tmp_path / "whole", progress=False)
    half = train(small(csv, "train.steps=6"), tmp_path / "half", progress=False)
    resumed = train(small(csv), tmp_path / "half", progress=False)
    assert half.step == 6 and resumed.step == whole.step == 12
    for a, b in zip(whole.generator.state_dict().values(), resumed.generator.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    (tmp_path / "t.csv").rename(tmp_path / "gone.csv")  # sampling never needs the training file
    runner = CliRunner()
    outs = []
    for name in ("a.csv", "b.csv"):
        r = runner.invoke(main, ["sample", str(tmp_path / "whole"), "--n", "300", "--out", str(tmp_path / name),
                                 "--seed", "5"])
        assert r.exit_code == 0, r.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]
    fake = pd.read_csv(tmp_path / "a.csv")
    real = table()
    assert list(fake.columns) == list(real.columns) and len(fake) == 300
    assert set(fake["group"]) <= {"a", "b", "c"} and fake["flag"].dtype == bool
    assert fake["age"].dtype == np.int64 and fake["age"].between(18, 89).all()
    assert fake["x"].between(real["x"].min(), real["x"].max()).all()
    r = runner.invoke(main, ["sample", str(tmp_path / "whole"), "--n", "300", "--out", str(tmp_path / "a.csv"),
                             "--seed", "6"])
    assert (tmp_path / "a.csv").read_bytes() != outs[0]


def test_conditional_sampling_gives_only_rows_with_the_value_or_fails(csv, tmp_path, one_thread):
    train(small(csv), tmp_path / "run", progress=False)
    G = load_generator(tmp_path / "run")
    from ganforge.tabular.sampling import sample_table

    rows = sample_table(G, 50, seed=0, condition=("group", "c"))
    assert len(rows) == 50 and (rows["group"] == "c").all()
    with pytest.raises(DataError, match="not a category of 'group'; allowed: a, b, c"):
        sample_table(G, 5, condition=("group", "zzz"))
    with pytest.raises(DataError, match="not a discrete column"):
        sample_table(G, 5, condition=("x", 1.0))
    r = CliRunner().invoke(main, ["sample", str(tmp_path / "run"), "--n", "5", "--out", str(tmp_path / "o.npy")])
    assert r.exit_code == 2 and "a table run writes rows to .csv or .parquet" in r.output


def test_python_api_fits_a_data_frame_and_samples_one(tmp_path, one_thread):
    frame = table(300)
    synth = TableSynthesizer(out=tmp_path / "api", steps=6, overrides=[
        "train.batch_size=60", "model.generator.widths=[16]", "model.discriminator.widths=[16]",
        "game.prior.latent_dim=4"]).fit(frame)
    a, b = synth.sample(40, seed=1), TableSynthesizer.load(tmp_path / "api").sample(40, seed=1)
    pd.testing.assert_frame_equal(a, b)
    assert list(a.columns) == list(frame.columns)
    assert (synth.sample(10, condition={"flag": True})["flag"]).all()
    desc = json.loads((tmp_path / "api" / "data.json").read_text())
    assert desc["kind"] == "table" and desc["n_classes"] == 5 and math.isclose(sum(desc["table"]["condition_probs"]), 1)


def test_the_ctgan_game_needs_a_table(csv):
    from ganforge.errors import ConfigError

    with pytest.raises(ConfigError, match="the ctgan game plays on a table"):
        load_config("ring8", ["game.name=ctgan"])


def test_missing_values_can_be_switched_off_for_categories_named_like_them(tmp_path):
    """A Bayesian network's state "None" is a category, not a missing cell, with data.missing_values=[]."""
    path = tmp_path / "bn.csv"
    pd.DataFrame({"lesion": ["None", "Mild", "None", "Severe"] * 20, "x": ["a", "b"] * 40}).to_csv(path, index=False)
    assert TableDataset(str(path)).schema.column("lesion").has_missing  # "None" is a missing marker by default
    data = TableDataset(str(path), missing_values=[])
    spec = data.schema.column("lesion")
    assert not spec.has_missing and "None" in spec.categories
