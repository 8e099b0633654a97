"""The HTML evaluation report: one self-contained page, plots embedded as base64 PNG (matplotlib)."""

from __future__ import annotations

import base64
import html
import io
import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from vidlens.classify.comparison import Comparison, format_p
from vidlens.classify.evaluation import Evaluation
from vidlens.errors import MissingDependencyError

_CJK_FONTS = ["Noto Sans CJK SC", "Noto Serif CJK SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
              "SimHei", "Microsoft YaHei", "PingFang SC", "DejaVu Sans"]
_METRIC_ORDER = ("n", "l1_accuracy", "l2_accuracy", "l1_macro_f1", "l2_macro_f1", "l2_micro_f1", "hit_at_1",
                 "hit_at_2", "gap", "mismatch_rate", "raw_mismatch_rate", "multilabel_micro_f1")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError("the evaluation report's plots", "pip install matplotlib") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["font.sans-serif"] = _CJK_FONTS
    plt.rcParams["font.family"] = "sans-serif"
    plt.rcParams["axes.unicode_minus"] = False
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing-glyph warnings when no CJK font is installed
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _confusion_plot(matrix: np.ndarray, names: list[str], title: str) -> str | None:
    used = np.flatnonzero(matrix.sum(0) + matrix.sum(1))
    if len(used) == 0 or len(used) > 60:
        return None
    m = matrix[np.ix_(used, used)].astype(float)
    rows = m.sum(1, keepdims=True)
    norm = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    plt = _pyplot()
    size = max(4.0, 0.32 * len(used) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    labels = [names[i] for i in used]
    ax.set_xticks(range(len(used)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(used)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if len(used) <= 20:
        for i in range(len(used)):
            for j in range(len(used)):
                if m[i, j]:
                    ax.text(j, i, int(m[i, j]), ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    return _png(fig)


def _contribution_plot(ev: Evaluation) -> str | None:
    if not ev.attention and not ev.ablation:
        return None
    plt = _pyplot()
    names = list(dict.fromkeys([*(ev.attention or {}), *(ev.ablation or {})]))
    panels = int(bool(ev.attention)) + int(bool(ev.ablation))
    fig, axes = plt.subplots(1, panels, figsize=(4.5 * panels, 0.45 * len(names) + 1.8), squeeze=False)
    axes = axes[0]
    k = 0
    if ev.attention:
        ax = axes[k]
        k += 1
        ax.barh(names, [ev.attention.get(n, 0.0) for n in names], color="#4c72b0")
        ax.set_xlabel("mean modal-attention weight")
        ax.set_title("attention")
        ax.invert_yaxis()
    if ev.ablation:
        ax = axes[k]
        ax.barh(names, [100 * ev.ablation.get(n, {}).get("drop", 0.0) for n in names], color="#dd8452")
        ax.set_xlabel("L2 accuracy lost without it (points)")
        ax.set_title("ablation")
        ax.invert_yaxis()
    fig.tight_layout()
    return _png(fig)


def _history_plot(history: list[dict[str, float]]) -> str | None:
    if not history:
        return None
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if "val_loss" in history[0]:
        ax.plot(epochs, [h.get("val_loss") for h in history], label="val loss")
    ax.set_xlabel("epoch")
    ax2 = ax.twinx()
    if "val_l2_accuracy" in history[0]:
        ax2.plot(epochs, [h.get("val_l2_accuracy") for h in history], color="green", label="val L2 acc")
        ax2.set_ylabel("accuracy")
    fig.legend(loc="upper right", fontsize=8)
    ax.set_title("training")
    return _png(fig)


def _table(rows: list[dict[str, Any]], columns: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            v = r.get(c, "")
            cells.append(f"<td>{v:.4f}</td>" if isinstance(v, float) else f"<td>{html.escape(str(v))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _img(src: str | None, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{src}">' if src else ""


def _page_head(title: str) -> list[str]:
    return [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;"
        "margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
        "th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}</style>",
        "</head><body>",
    ]


def _folds_plot(folds: list[dict[str, Any]]) -> str | None:
    """Each fold's test figure as a dot per metric, the mean as a bar: the spread a single split hides."""
    metrics = [m for m in ("l1_accuracy", "l2_accuracy", "l2_macro_f1") if all(m in f["metrics"] for f in folds)]
    if not folds or not metrics:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 2.8))
    for x, m in enumerate(metrics):
        values = [f["metrics"][m] for f in folds]
        ax.scatter([x] * len(values), values, color="#2f6fb0", zorder=3)
        ax.hlines(float(np.mean(values)), x - 0.25, x + 0.25, color="#c0392b")
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_xlim(-0.6, len(metrics) - 0.4)
    ax.set_ylabel(f"test part of each of {len(folds)} folds")
    return _png(fig)


def _folds_section(folds: list[dict[str, Any]]) -> list[str]:
    columns = ["fold", "train", "val", "test", "best_epoch", "l1_accuracy", "l2_accuracy", "l2_macro_f1"]
    rows = [{**{k: f[k] for k in columns[:5]}, **{m: f["metrics"].get(m, "") for m in columns[5:]}} for f in folds]
    return ["<h2>Folds</h2>", _img(_folds_plot(folds), "per-fold metrics"), _table(rows, columns)]


def render_report(ev: Evaluation, extra: dict[str, Any] | None = None,
                  folds: list[dict[str, Any]] | None = None) -> str:
    """The report as one HTML string (``folds``: a cross-validation's per-fold results, shown first)."""
    tax = ev.predictions.taxonomy if ev.predictions is not None else None
    metrics = [{"metric": k, "value": ev.metrics[k]} for k in _METRIC_ORDER if k in ev.metrics]
    parts = [
        *_page_head(f"vidlens evaluation: {ev.name}"),
        f"<h1>Evaluation of {html.escape(ev.name)}</h1>",
        f"<p>method: {html.escape(ev.method)} · split: {html.escape(ev.split)} · "
        f"{ev.metrics.get('n', 0)} labelled items · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>",
        "<h2>Summary</h2>",
        _table(metrics),
        *(_folds_section(folds) if folds else []),
    ]
    if extra:
        parts += ["<h2>Details</h2>", "<pre>" + html.escape(json.dumps(extra, ensure_ascii=False, indent=2)) + "</pre>"]
    contribution = _contribution_plot(ev)
    if contribution:
        parts += ["<h2>Modality contribution</h2>", _img(contribution, "modality contribution")]
        if ev.ablation:
            parts.append(_table([{"modality": m, **v} for m, v in ev.ablation.items()]))
        if ev.attention:
            parts.append(_table([{"modality": m, "mean attention": w} for m, w in ev.attention.items()]))
    if tax is not None:
        parts += ["<h2>Confusion (level 1)</h2>", _img(_confusion_plot(ev.confusion_l1, tax.l1_names, "L1"), "L1")]
        l2_plot = _confusion_plot(ev.confusion_l2, tax.l2_names, "L2")
        if l2_plot:
            parts += ["<h2>Confusion (level 2)</h2>", _img(l2_plot, "L2")]
        else:
            pairs = _top_confusions(ev.confusion_l2, tax.l2_names)
            parts += ["<h2>Most confused level-2 pairs</h2>", _table(pairs)]
    history = _history_plot(ev.history)
    if history:
        parts += ["<h2>Training</h2>", _img(history, "training history")]
    parts += ["<h2>Per class (level 1)</h2>", _table(ev.per_class_l1),
              "<h2>Per class (level 2)</h2>", _table(ev.per_class_l2), "</body></html>"]
    return "\n".join(parts)


def _top_confusions(matrix: np.ndarray, names: list[str], k: int = 25) -> list[dict[str, Any]]:
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:k]
    out = []
    for f in flat:
        i, j = np.unravel_index(f, off.shape)
        if off[i, j] == 0:
            break
        out.append({"true": names[i], "predicted": names[j], "count": int(off[i, j])})
    return out


def write_report(ev: Evaluation, path: str | Path, extra: dict[str, Any] | None = None,
                 folds: list[dict[str, Any]] | None = None) -> Path:
    """Write the HTML report (and ``<path>.json`` with the numbers) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_report(ev, extra, folds), encoding="utf-8")
    path.with_suffix(".json").write_text(
        json.dumps({**ev.to_dict(), **({"details": extra} if extra else {})}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )
    return path


def _per_class_plot(c: Comparison, most: int = 40) -> str | None:
    """Paired horizontal bars of each class's F1 (A, B); with many classes the most changed ``most``."""
    rows = [r for r in c.per_class if r["support"] or r["f1_a"] or r["f1_b"]]
    if not rows:
        return None
    if len(rows) > most:
        rows = sorted(rows, key=lambda r: -abs(r["delta"]))[:most]
        rows.sort(key=lambda r: -r["delta"])
    plt = _pyplot()
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(7, 0.28 * len(rows) + 1.2))
    ax.barh(y - 0.2, [r["f1_a"] for r in rows], height=0.4, label=c.models[0], color="#9aa5b1")
    ax.barh(y + 0.2, [r["f1_b"] for r in rows], height=0.4, label=c.models[1], color="#2f6fb0")
    ax.set_yticks(y, [f"{r['name']} ({r['support']})" for r in rows], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("L2 F1 (support)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    return _png(fig)


def _difference_plot(c: Comparison) -> str | None:
    """Histogram of the bootstrap's L2 accuracy differences, with zero and the observed difference marked."""
    if not len(c.resampled_difference):
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 2.6))
    ax.hist(100 * c.resampled_difference, bins=40, color="#2f6fb0", alpha=0.8)
    ax.axvline(0, color="black", linewidth=1)
    ax.axvline(100 * c.metrics["l2_accuracy"]["difference"]["value"], color="#c0392b", linestyle="--")
    ax.set_xlabel(f"L2 accuracy, {c.models[1]} − {c.models[0]} (points), over bootstrap resamples")
    return _png(fig)


def render_comparison(c: Comparison) -> str:
    """The comparison report as one HTML string."""
    a, b = c.models
    discordant = [{"level": lv.upper(), f"only {a} right": v["a_only"], f"only {b} right": v["b_only"],
                   "p-value": format_p(v["p_value"])} for lv, v in c.mcnemar.items()]
    parts = [
        *_page_head(f"vidlens comparison: {a} vs {b}"),
        f"<h1>{html.escape(a)} (A) vs {html.escape(b)} (B)</h1>",
        f"<p>split: {html.escape(c.split)} · {c.n} labelled items scored by both · same L2 on "
        f"{100 * c.agreement:.1f}% of them · {100 * c.confidence:.0f}% bootstrap intervals · "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}</p>",
        f"<p><b>{html.escape(c.verdict())}</b></p>",
        "<h2>Summary</h2>", _table(c.summary_rows()),
        "<h2>Items only one gets right (McNemar)</h2>", _table(discordant),
        _img(_difference_plot(c), "bootstrap differences"),
        "<h2>Per class (level 2)</h2>", _img(_per_class_plot(c), "per-class F1"),
        _table(c.per_class, ["name", "support", "f1_a", "f1_b", "delta"]),
        "</body></html>",
    ]
    return "\n".join(parts)


def write_comparison_report(c: Comparison, path: str | Path) -> Path:
    """Write the comparison report (and ``<path>.json`` with the numbers) and return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_comparison(c), encoding="utf-8")
    path.with_suffix(".json").write_text(json.dumps(c.to_dict(), ensure_ascii=False, indent=2), encoding="utf-8")
    return path


__all__ = ["render_comparison", "render_report", "write_comparison_report", "write_report"]
