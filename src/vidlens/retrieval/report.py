"""The HTML page of duplicate groups, with the cover thumbnails of ``LIBRARY/thumbnails/<id>.jpg``."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

from vidlens.index.base import atomic_write_text


def _fmt_segment(seg: list[float]) -> str:
    return f"{seg[0]:.1f}–{seg[1]:.1f} s" if seg else "—"


def write_dedup_report(lib: Any, groups: list[dict[str, Any]], path: str | os.PathLike | None = None) -> Path:
    """Write the duplicate groups as one self-contained HTML page (thumbnails linked relatively).

    Args:
        lib: the library (for titles and thumbnails).
        groups: what :func:`vidlens.retrieval.dedup` returned.
        path: where to write; default ``LIBRARY/reports/dedup.html``.

    Returns:
        The file written.
    """
    out = Path(path) if path is not None else lib.folder("reports") / "dedup.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    thumbs = lib.root / "thumbnails"

    def card(vid: str) -> str:
        video = lib.get(vid)
        thumb = thumbs / f"{vid}.jpg"
        if thumb.exists():
            src = html.escape(os.path.relpath(thumb, out.parent))
            img = f'<img src="{src}" alt="">'
        else:
            img = '<div class="noimg">no thumbnail</div>'
        title = html.escape(video.get("title") or (video.get("paths") or [vid])[0])
        return (f'<figure>{img}<figcaption><b>{title}</b><br><code>{vid[:12]}</code> · '
                f'{float(video.get("duration") or 0):.1f} s</figcaption></figure>')

    parts = [
        "<!doctype html><html lang='zh'><head><meta charset='utf-8'><title>vidlens duplicates</title><style>",
        "body{font-family:sans-serif;margin:2em;color:#222}section{border:1px solid #ddd;border-radius:8px;"
        "padding:1em;margin:1em 0}figure{display:inline-block;margin:.5em;width:220px;vertical-align:top}"
        "img{max-width:220px;max-height:160px;border-radius:4px}.noimg{width:220px;height:120px;background:#eee;"
        "display:flex;align-items:center;justify-content:center;color:#888}table{border-collapse:collapse}"
        "td,th{padding:.2em .8em;border-bottom:1px solid #eee;text-align:left}",
        "</style></head><body>",
        f"<h1>Near-duplicate groups</h1><p>{len(groups)} groups in {html.escape(str(lib.root))}</p>",
    ]
    for n, group in enumerate(groups, 1):
        parts.append(f"<section><h2>Group {n}: {len(group['videos'])} videos, best score {group['score']:.3f}</h2>")
        parts.extend(card(vid) for vid in group["videos"])
        parts.append("<table><tr><th>video</th><th>segment</th><th>video</th><th>segment</th><th>score</th></tr>")
        for p in group["pairs"]:
            parts.append(f"<tr><td><code>{p['a'][:12]}</code></td><td>{_fmt_segment(p['segment_a'])}</td>"
                         f"<td><code>{p['b'][:12]}</code></td><td>{_fmt_segment(p['segment_b'])}</td>"
                         f"<td>{p['score']:.3f}</td></tr>")
        parts.append("</table></section>")
    if not groups:
        parts.append("<p>No duplicates found.</p>")
    parts.append("</body></html>")
    atomic_write_text(out, "\n".join(parts))
    return out
