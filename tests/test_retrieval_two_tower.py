"""The two-tower model and its losses on small synthetic galleries."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidlens.models import LOSSES
from vidlens.retrieval.embedder import l2n
from vidlens.retrieval.two_tower import (
    TwoTowerConfig,
    TwoTowerModel,
    VideoInputs,
    fit_two_tower,
    semantic_neighbours,
)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models train several times faster on one thread than on two shared, busy cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def gallery(n=80, dim=16, seed=0):
    """Titles live in the query space but queries are a rotation of them away: training must learn it."""
    rng = np.random.default_rng(seed)
    titles = l2n(rng.normal(size=(n, dim)))
    visual = l2n(rng.normal(size=(n, 24)))
    rot, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    mix = l2n(0.6 * titles @ rot + 0.4 * titles)
    present_t = rng.random(n) > 0.2
    inputs = VideoInputs([f"v{i}" for i in range(n)], {"text.title": titles * present_t[:, None], "visual": visual},
                         {"text.title": present_t, "visual": np.ones(n, bool)})
    # two query phrasings per video: noisy copies of the rotated title
    q_train = l2n(np.repeat(mix, 2, axis=0) + 0.15 * rng.normal(size=(2 * n, dim)))
    pairs = [(i, i // 2) for i in range(2 * n)]
    q_val = l2n(mix + 0.15 * rng.normal(size=(n, dim)))
    return inputs, q_train, pairs, (q_val, list(range(n)))


def config(**kw):
    base = dict(blocks={"text.title": 16, "visual": 24}, text_blocks=["text.title"], block_priors={"text.title": 1.0},
                query_dim=16, hidden=32, epochs_round1=15, warmup_epochs=2, epochs_round2=4, batch_size=32, lr=5e-3)
    base.update(kw)
    return TwoTowerConfig(**base)


def test_untrained_towers_reproduce_zero_shot_and_training_improves():
    inputs, q, pairs, val = gallery()
    _model, history = fit_two_tower(config(), inputs, q, pairs, val=val)
    # before training: the title block passes through unchanged (identity init) and queries too
    fresh = TwoTowerModel(config())
    v = fresh.encode_videos(inputs)
    has = inputs.present["text.title"]
    np.testing.assert_allclose(v[has] @ inputs.blocks["text.title"][has].T, (v[has] @ v[has].T), atol=0.2)
    np.testing.assert_allclose(fresh.encode_queries(q[:3]), q[:3], atol=1e-5)
    stages = [h["stage"] for h in history]
    assert stages[0].startswith("zero-shot") and stages[1].startswith("round 1") and stages[2].startswith("round 2")
    assert history[1]["R@1"] > history[0]["R@1"] + 0.2, history
    assert history[2]["R@5"] >= history[1]["R@5"] - 0.05, history


def test_save_load_round_trip_and_neighbours(tmp_path):
    inputs, q, pairs, _val = gallery(n=40)
    cfg = config(neighbours=3, epochs_round1=3, epochs_round2=1)
    model, _ = fit_two_tower(cfg, inputs, q, pairs)
    assert inputs.neighbours.shape == (40, 3)
    model.meta = {"note": "x"}
    again = TwoTowerModel.load(model.save(tmp_path / "m"))
    np.testing.assert_allclose(again.encode_videos(inputs), model.encode_videos(inputs), atol=1e-6)
    np.testing.assert_allclose(again.encode_queries(q[:4]), model.encode_queries(q[:4]), atol=1e-6)
    assert again.meta == {"note": "x"}
    nb = semantic_neighbours(np.eye(4) + 0.1, 2)
    assert nb.shape == (4, 2) and all(i not in row for i, row in enumerate(nb))


def test_losses():
    s = torch.tensor([[0.9, 0.5, 0.1], [0.3, 0.8, 0.7]])
    pos = torch.tensor([0, 1])
    nce = LOSSES.create("info_nce", temperature=0.1)
    assert float(nce(s, pos)) > 0
    same = torch.tensor([[False, True, False], [False, False, False]])  # column 1 also fits query 0
    assert float(nce(s, pos, same)) < float(nce(s, pos))
    trip = LOSSES.create("triplet", margin=0.2)
    assert float(trip(s, pos, hard=True)) == pytest.approx((0 + 0.1) / 2)  # [0.2-0.9+0.5]+ , [0.2-0.8+0.7]+
    assert float(trip(s, pos, same, hard=True)) <= float(trip(s, pos, hard=True))
    torch.manual_seed(0)
    assert float(trip(s, pos, hard=False)) <= float(trip(s, pos, hard=True))
    quint = LOSSES.create("quintuplet", margin_online=0.2, margin_offline=0.1)
    easy = quint(s, pos, torch.tensor([-0.5, -0.5]))
    hard = quint(s, pos, torch.tensor([0.95, 0.85]))
    assert float(hard) > float(easy)
    with pytest.raises(Exception, match="has no parameter"):
        LOSSES.create("triplet", gamma=1)
