"""The service's keyword index: its on-disk snapshot (round trip, staleness, corruption), folding the
delta, and ranking that matches a plain pass over all postings."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

import vidlens
from vidlens.service.textsearch import TextSearchIndex, tokenize
from vidlens.service.textsearch import snapshot as snapshots
from vidlens.service.textsearch.index import _filter_mask, _terms
from vidlens.store.models import Extraction, Video, utcnow

WORDS = [f"w{i}" for i in range(300)] + ["红烧肉", "做饭", "露营", "装备", "咖啡"]
N_VIDEOS = 2000


def fill(lib: vidlens.Library, start: int, n: int, seed: int = 0) -> list[str]:
    """Write ``n`` videos with titles and transcripts drawn Zipf-like from ``WORDS`` straight into the DB."""
    rng = np.random.default_rng(seed + start)
    p = 1.0 / np.arange(1, len(WORDS) + 1)
    p /= p.sum()
    now = utcnow()
    videos, extractions = [], []
    for i in range(start, start + n):
        vid = f"{i:08x}{'ab' * 6}"
        title = " ".join(rng.choice(WORDS, size=int(rng.integers(2, 6)), p=p))
        asr = " ".join(rng.choice(WORDS, size=int(rng.integers(0, 20)), p=p))
        duration = float(rng.integers(5, 120))
        videos.append({"id": vid, "title": title, "summary": None, "product_titles": [], "product_categories": [],
                       "labels": [], "extra": {}, "size_bytes": 1000, "container": "mp4", "duration": duration,
                       "has_video": True, "has_audio": True, "width": 64, "height": 48, "fps": 25.0, "rotation": 0,
                       "variable_frame_rate": False, "created_at": now, "updated_at": now})
        if asr:
            extractions.append({"video_id": vid, "feature": "asr", "key": "t@1", "status": "ok", "message": None,
                                "result": {"language": "zh" if i % 3 else "en", "text": asr}, "seconds": 0.0,
                                "updated_at": now})
    with lib.store.session() as s:
        s.execute(Video.__table__.insert(), videos)
        if extractions:
            s.execute(Extraction.__table__.insert(), extractions)
        s.commit()
    return [v["id"] for v in videos]


@pytest.fixture(scope="module")
def library(tmp_path_factory) -> Path:
    """A library of ``N_VIDEOS`` synthetic videos (copied by tests that change it)."""
    root = tmp_path_factory.mktemp("textsearch") / "lib"
    lib = vidlens.open(root)
    fill(lib, 0, N_VIDEOS)
    lib.close()
    return root


@pytest.fixture
def lib(library, tmp_path):
    root = tmp_path / "lib"
    shutil.copytree(library, root)
    lib = vidlens.open(root)
    yield lib
    lib.close()


def folder_of(lib: vidlens.Library) -> Path:
    return lib.root / "index" / "textsearch"


QUERIES = ["w0", "w1 w2", "w3 w150", "w299", "红烧肉", "做饭 w0", "露营装备 w7", "w0 w1 w2 w4", "咖", "nothing here"]
FILTERS = [{}, {"min_duration": 60}, {"has_speech": True, "limit": 5, "offset": 3}, {"max_duration": 30, "offset": 40},
           {"language": "zh"}, {"limit": 100}]


def reference(index: TextSearchIndex, query: str, limit: int = 20, offset: int = 0, min_duration=None,
              max_duration=None, has_speech=None, language=None) -> tuple[int, list[tuple[str, float]]]:
    """The answer of one dense pass over every posting, ranked by (score, document number)."""
    view = index._view
    terms = _terms(view, list(dict.fromkeys(tokenize(query))))
    if not terms:
        return 0, []
    docs = np.concatenate([d for t in terms for d, _w in t.parts()])
    scores = np.concatenate([w * t.idf for t in terms for _d, w in t.parts()])
    dense = np.bincount(docs, weights=scores, minlength=len(view.alive))
    mask = _filter_mask(view, min_duration, max_duration, has_speech)
    cand = np.flatnonzero(dense * (view.alive if mask is None else mask))
    if language is not None:
        cand = np.array([c for c in cand.tolist() if view.info(c).language == language], np.int64)
    total = dense[cand].astype(np.float32)
    order = np.lexsort((cand, -total))[offset:offset + limit]
    return len(cand), [(view.info(c).video_id, round(float(s), 4)) for c, s in zip(cand[order], total[order],
                                                                                   strict=True)]


def answers(index: TextSearchIndex) -> list[tuple[int, list[tuple[str, float]]]]:
    out = []
    for q in QUERIES:
        for kw in FILTERS:
            n, hits = index.search(q, **kw)
            out.append((n, [(h.video_id, h.score) for h in hits]))
    return out


def assert_ranks_like_a_full_pass(index: TextSearchIndex) -> None:
    for q in QUERIES:
        for kw in FILTERS:
            n, hits = index.search(q, **kw)
            assert (n, [(h.video_id, h.score) for h in hits]) == reference(index, q, **kw), (q, kw)


def test_snapshot_round_trip(lib):
    built = TextSearchIndex(lib.store, folder=folder_of(lib))
    built.load_or_build()
    assert built.started_from == "rebuild" and len(built) == N_VIDEOS
    assert_ranks_like_a_full_pass(built)
    loaded = TextSearchIndex(lib.store, folder=folder_of(lib))
    loaded.load_or_build()
    assert loaded.started_from == "snapshot" and len(loaded) == N_VIDEOS
    assert answers(loaded) == answers(built)
    # The base is mapped read-only from the snapshot's files (shared by worker processes).
    docs = loaded._view.base.docs
    assert isinstance(docs.base, np.memmap) or not docs.flags.writeable
    hit = loaded.search("红烧肉")[1][0]
    assert hit.matched and hit.title and hit.duration > 0


def test_stale_snapshot_catches_up_or_rebuilds(lib, caplog):
    TextSearchIndex(lib.store, folder=folder_of(lib)).load_or_build()
    first = snapshots.current(folder_of(lib))
    # A few changes since it was written: the next start maps it and re-reads just those videos.
    new_ids = fill(lib, N_VIDEOS, 3, seed=9)
    with lib.store.session() as s:
        s.get(Video, f"{5:08x}{'ab' * 6}").title = "zebracake"
        s.delete(s.get(Video, f"{6:08x}{'ab' * 6}"))
        s.commit()
    index = TextSearchIndex(lib.store, folder=folder_of(lib))
    index.load_or_build()
    assert index.started_from == "snapshot" and len(index) == N_VIDEOS + 2
    assert index.search("zebracake")[1][0].video_id == f"{5:08x}{'ab' * 6}"
    assert f"{6:08x}{'ab' * 6}" not in {h.video_id for h in index.search("w0", limit=100, offset=0)[1]}
    assert new_ids[0] in index._view.added_of
    assert_ranks_like_a_full_pass(index)
    # Too many changes for the delta: rebuilt from the DB, with a log line, and a new snapshot written.
    fill(lib, N_VIDEOS + 3, 20, seed=11)
    caplog.set_level(logging.INFO, logger="vidlens.service.textsearch")
    index = TextSearchIndex(lib.store, merge_at=10, folder=folder_of(lib))
    index.load_or_build()
    assert index.started_from == "rebuild" and len(index) == N_VIDEOS + 22
    assert "is stale" in caplog.text
    assert snapshots.current(folder_of(lib))[0] != first[0]
    assert_ranks_like_a_full_pass(index)


@pytest.mark.parametrize("damage", ["truncated", "missing file", "bad manifest", "dangling pointer", "wrong shape"])
def test_corrupt_snapshot_is_rebuilt(lib, caplog, damage):
    built = TextSearchIndex(lib.store, folder=folder_of(lib))
    built.load_or_build()
    expected = answers(built)
    del built
    generation = folder_of(lib) / snapshots.current(folder_of(lib))[0]
    # Damage by writing new files: changing a mapped file in place would crash this process (SIGBUS),
    # which is why snapshots are never rewritten in place.
    if damage == "truncated":
        path = generation / "docs.npy"
        data = path.read_bytes()
        path.unlink()
        path.write_bytes(data[: len(data) // 2])
    elif damage == "missing file":
        (generation / "vocab.txt").unlink()
    elif damage == "bad manifest":
        (generation / "manifest.json").write_text("{not json")
    elif damage == "dangling pointer":
        (folder_of(lib) / snapshots.CURRENT).write_text("g1-1\n")
    else:
        (generation / "title_start.npy").unlink()
        np.save(generation / "title_start.npy", np.zeros(3, np.int64))
    caplog.set_level(logging.WARNING, logger="vidlens.service.textsearch")
    index = TextSearchIndex(lib.store, folder=folder_of(lib))
    index.load_or_build()
    assert index.started_from == "rebuild" and "rebuilding from the DB" in caplog.text
    assert answers(index) == expected
    again = TextSearchIndex(lib.store, folder=folder_of(lib))
    again.load_or_build()
    assert again.started_from == "snapshot"


def test_delta_is_folded_into_a_new_snapshot(lib):
    index = TextSearchIndex(lib.store, merge_at=10**9, folder=folder_of(lib))
    index.load_or_build()
    first = index._view.generation
    ids = sorted(lib.store.video_ids())[:30]
    with lib.store.session() as s:
        for i, vid in enumerate(ids):
            s.get(Video, vid).title = f"renamed w{i} 红烧肉"
        s.commit()
    index.update(ids)
    assert len(index._view.added) == 30 and len(index) == N_VIDEOS
    assert_ranks_like_a_full_pass(index)  # delta postings and masked base documents
    index.merge()
    assert index._view.generation not in (None, first) and not index._view.added
    assert len(index._view.table) == N_VIDEOS
    assert_ranks_like_a_full_pass(index)
    # The folded base is what a build from the DB gives, up to document numbers (the order of ties).
    rebuilt = TextSearchIndex(lib.store)
    rebuilt.rebuild()
    for (n1, h1), (n2, h2) in zip(answers(index), answers(rebuilt), strict=True):
        assert n1 == n2 and [s for _v, s in h1] == [s for _v, s in h2]
    restarted = TextSearchIndex(lib.store, folder=folder_of(lib))
    restarted.load_or_build()
    assert restarted.started_from == "snapshot" and restarted._view.generation == index._view.generation
    assert answers(restarted) == answers(index)


def test_index_without_a_folder_and_an_empty_library(tmp_path):
    lib = vidlens.open(tmp_path / "lib")
    index = TextSearchIndex(lib.store)
    index.load_or_build()
    assert index.search("anything") == (0, []) and not (tmp_path / "lib" / "index" / "textsearch").exists()
    index = TextSearchIndex(lib.store, folder=folder_of(lib))
    index.load_or_build()
    again = TextSearchIndex(lib.store, folder=folder_of(lib))
    again.load_or_build()
    assert again.started_from == "snapshot" and again.search("w1") == (0, [])
    fill(lib, 0, 5)
    assert again.refresh() == 5 and again.search("w0")[0] >= 1
    lib.close()


def test_search_fast_path_answers_like_the_route(lib):
    """``GET /api/v1/search?q=…&limit=…&offset=…`` skips FastAPI's routing: the same bytes as the route
    (reached here through an explicit ``engine=keyword``), and anything doubtful goes to the route."""
    from fastapi.testclient import TestClient

    from vidlens.service import ServiceSettings, create_app

    app = create_app(lib, ServiceSettings(search_cache_size=0, web=False))
    with TestClient(app) as client:
        for q in [*QUERIES, "W0  w1", "%", "红"]:
            for page in ({}, {"limit": "7"}, {"limit": "100", "offset": "1000"}, {"offset": "3", "limit": "1"}):
                fast = client.get("/api/v1/search", params={"q": q, **page})
                routed = client.get("/api/v1/search", params={"q": q, **page, "engine": "keyword"})
                assert fast.status_code == routed.status_code == 200
                assert fast.content == routed.content and fast.headers["content-type"] == "application/json"
        for bad in ("q=", "limit=5", "q=a&limit=0", "q=a&limit=101", "q=a&offset=1001", "q=a&limit=x",
                    "q=" + "a" * 501):
            assert client.get(f"/api/v1/search?{bad}").status_code == 422, bad
        for doubtful, limit in (("q=w0&limit=%2B5", 5), ("q=w1&q=w0", 20), ("q=w0&limit=05", 5)):
            assert client.get(f"/api/v1/search?{doubtful}").json()["limit"] == limit
        metrics = client.get("/metrics").text
        assert 'vidlens_http_requests_total{method="GET",route="/api/v1/search",status="200"}' in metrics
