"""The vector index contract, one suite run against every backend (FAISS, and Milvus through Milvus Lite)."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
from types import SimpleNamespace

import numpy as np
import pytest

from vidlens.config import config_to_toml, load_config
from vidlens.errors import ConfigError
from vidlens.index import (
    INDEX_BACKENDS,
    FaissIndex,
    IndexConfig,
    SearchFilter,
    VectorIndexError,
    create_index,
    load_index,
    parse_filter,
)


def _milvus_available() -> str | None:
    try:
        import milvus_lite  # noqa: F401
        import pymilvus  # noqa: F401
    except ImportError as exc:
        return f"Milvus Lite is not installed ({exc}); pip install pymilvus milvus-lite"
    return None


BACKENDS = [
    "faiss",
    pytest.param("milvus", marks=pytest.mark.skipif(_milvus_available() is not None,
                                                     reason=str(_milvus_available()))),
]

DIM = 16
DAY = 86_400
T0 = 1_700_000_000  # 2023-11-14


def unit(x):
    x = np.asarray(x, np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    x = unit(rng.normal(size=(300, DIM)))
    ids = [f"vid{i:04d}" for i in range(300)]
    meta = [{"categories": [["美食", "家常菜"], ["游戏"], ["音乐", "纯音乐"]][i % 3],
             "duration": float(i % 90) if i % 17 else None,
             "date": T0 + (i % 50) * DAY} for i in range(300)]
    return ids, x, meta


@pytest.fixture(params=BACKENDS)
def make(request, tmp_path):
    made = []

    def build(dim=DIM, folder=None, **params):
        index = create_index(request.param, dim, folder or tmp_path / f"index{len(made)}", **params)
        made.append(index)
        return index

    build.backend = request.param
    yield build
    for index in made:
        index.close()


@pytest.fixture
def filled(make, data):
    ids, x, meta = data
    index = make()
    index.upsert(ids, x, meta)
    return index


def exact(x, q, k, allowed=None):
    s = q @ x.T
    if allowed is not None:
        s[:, ~allowed] = -np.inf
    order = np.argsort(-s, axis=1)[:, :k]
    return [[int(j) for j in row if np.isfinite(s[r, j])] for r, row in enumerate(order)]


def test_search_finds_itself_and_batches(filled, data):
    ids, x, _ = data
    assert len(filled) == 300 and filled.ids() == sorted(ids)
    hits = filled.search(x[:5], k=3)
    assert [h[0].id for h in hits] == ids[:5]
    assert all(abs(h[0].score - 1.0) < 1e-4 for h in hits)
    assert all(h[0].score >= h[1].score >= h[2].score for h in hits)
    one = filled.search_one(x[7] * 3.0, k=1)  # queries are normalised too
    assert one[0].id == ids[7]
    assert len(filled.search(x[:2], k=1000)[0]) == 300


def test_upsert_replaces_and_last_duplicate_wins(filled, data):
    ids, x, meta = data
    filled.upsert([ids[0], ids[0]], np.stack([x[1], x[2]]), [meta[0], {"categories": ["新"], "duration": 5}])
    assert len(filled) == 300
    np.testing.assert_allclose(filled.get_vectors([ids[0]])[0], x[2], atol=1e-5)
    top = filled.search_one(x[2], k=2)
    assert {h.id for h in top} == {ids[0], ids[2]}
    assert [h.id for h in filled.search_one(x[2], k=5, filter=parse_filter("category=新"))] == [ids[0]]


def test_delete(filled, data):
    ids, x, _ = data
    assert filled.delete([ids[3], ids[4], "nope"]) == 2
    assert filled.delete([ids[3]]) == 0
    assert len(filled) == 298 and ids[3] not in filled and ids[5] in filled
    found = {h.id for row in filled.search(x[:10], k=20) for h in row}
    assert ids[3] not in found and ids[4] not in found
    with pytest.raises(VectorIndexError, match="no item"):
        filled.get_vectors([ids[3]])


FILTER_SPECS = [
    ["category=美食"],
    ["category=游戏|纯音乐"],
    ["duration>=30", "duration<=60"],
    ["duration=10..20", "category=音乐"],
    ["date>=2023-12-01"],
    ["date=2023-11-20..2023-11-25"],
    ["date<=2023-11-16", "duration<=40"],
    ["category=不存在"],
]


def test_filters_match_brute_force(filled, data):
    ids, x, meta = data
    q = x[[1, 50, 222]]
    for spec in FILTER_SPECS:
        flt = parse_filter(spec)
        allowed = np.array([flt.matches(m) for m in meta])
        want = exact(x, q, 10, allowed)
        got = filled.search(q, k=10, filter=flt)
        for w, g in zip(want, got, strict=True):
            assert [h.id for h in g] == [ids[j] for j in w], spec
            assert all(flt.matches(meta[ids.index(h.id)]) for h in g)


def test_persistence_round_trip(make, data, tmp_path):
    ids, x, meta = data
    folder = tmp_path / "saved"
    index = make(folder=folder)
    index.upsert(ids, x, meta)
    index.delete([ids[0]])
    index.info = {"source": "fingerprint-1"}
    index.save()
    before = index.search(x[:4], k=5, filter=parse_filter("category=美食"))
    index.close()
    again = load_index(folder)
    try:
        assert again.info == {"source": "fingerprint-1"} and len(again) == 299
        after = again.search(x[:4], k=5, filter=parse_filter("category=美食"))
        assert [[h.id for h in row] for row in after] == [[h.id for h in row] for row in before]
        again.upsert(["extra"], x[:1])
        assert len(again) == 300
    finally:
        again.close()


def _remove(path):
    # Milvus Lite's server may still be flushing files for a moment after close(): retry briefly.
    for attempt in range(20):
        try:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
            return
        except OSError:
            if attempt == 19:
                raise
            time.sleep(0.25)


def test_missing_files_raise_a_clear_error(make, data, tmp_path):
    ids, x, meta = data
    folder = tmp_path / "gone"
    index = make(folder=folder)
    index.upsert(ids, x, meta)
    index.save()
    index.close()
    for child in folder.iterdir():
        if child.name != "state.json":
            _remove(child)
    with pytest.raises(VectorIndexError, match="missing"):
        load_index(folder)
    with pytest.raises(VectorIndexError, match="no index"):
        load_index(tmp_path / "never")


def test_bad_input(make, data):
    ids, x, _ = data
    index = make()
    assert index.search(x[:2], k=3) == [[], []]  # empty index
    with pytest.raises(VectorIndexError, match="shape"):
        index.upsert(["a"], np.ones((1, DIM + 1)))
    with pytest.raises(VectorIndexError, match="NaN"):
        index.upsert(["a"], np.full((1, DIM), np.nan))
    with pytest.raises(VectorIndexError, match="2 ids but 1"):
        index.upsert(["a", "b"], x[:1])
    with pytest.raises(VectorIndexError, match="empty id"):
        index.upsert([""], x[:1])
    index.upsert(ids[:3], x[:3])
    with pytest.raises(VectorIndexError, match="k must be positive"):
        index.search(x[:1], k=0)
    with pytest.raises(VectorIndexError, match="shape"):
        index.search(np.ones((1, 3)), k=1)


def test_concurrent_upserts_during_search(make, data):
    ids, x, meta = data
    index = make()
    index.upsert(ids[:100], x[:100], meta[:100])
    errors: list[BaseException] = []
    stop = threading.Event()

    def searcher():
        try:
            while not stop.is_set():
                for row in index.search(x[:8], k=5):
                    assert len(row) == 5 and len({h.id for h in row}) == 5
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def writer(lo, hi):
        try:
            for start in range(lo, hi, 10):
                index.upsert(ids[start:start + 10], x[start:start + 10], meta[start:start + 10])
                index.delete([ids[start]])
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=searcher) for _ in range(2)]
    writers = [threading.Thread(target=writer, args=(100, 200)), threading.Thread(target=writer, args=(200, 300))]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert len(index) == 300 - 20


# -- FAISS specifics ----------------------------------------------------------------------------------------

def clustered(n, dim, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(40, dim))
    return unit(centres[rng.integers(0, 40, n)] + 0.6 * rng.normal(size=(n, dim)))


def test_faiss_switches_to_hnsw_and_tunes_ef_for_recall(tmp_path):
    x = clustered(3000, 32)
    ids = [f"v{i}" for i in range(3000)]
    index = FaissIndex(32, tmp_path / "f", exact_threshold=1000, hnsw_m=16, ef_construction=80)
    index.upsert(ids[:900], x[:900])
    assert index.mode == "exact"
    index.upsert(ids[900:], x[900:])
    assert index.mode == "hnsw" and index.tuning_["recall"] >= 0.95
    rng = np.random.default_rng(1)
    q = unit(x[rng.integers(0, 3000, 100)] + 0.3 * rng.normal(size=(100, 32)))
    want = exact(x, q, 10)
    got = index.search(q, k=10)
    recall = np.mean([len({ids[j] for j in w} & {h.id for h in g}) / 10 for w, g in zip(want, got, strict=True)])
    assert recall >= 0.93
    # a filter that keeps many items goes through HNSW with a raised efSearch, a narrow one is exact
    meta = [{"categories": ["a" if i % 4 else "b"], "duration": i % 100} for i in range(3000)]
    index.upsert(ids, x, meta)
    index.brute_force_max = 100
    assert 0.25 <= index.filter_exponent_ <= 1.0 and index.distances_per_ef_ >= 1.0
    wide, narrow = index.plan(parse_filter("category=a")), index.plan(parse_filter("duration<=3"))
    assert wide["strategy"] == "hnsw+filter" and wide["matched"] == 2250 and wide["ef_search"] > index.ef
    assert narrow == {"matched": 120, "items": 3000, "strategy": "exact", "ef_search": None}
    assert index.plan()["strategy"] == "hnsw"
    for spec in (["category=a"], ["duration<=3"]):
        flt = parse_filter(spec)
        allowed = np.array([flt.matches(m) for m in meta])
        want = exact(x, q, 10, allowed)
        got = index.search(q, k=10, filter=flt)
        assert all(flt.matches(meta[int(h.id[1:])]) for g in got for h in g)
        recall = np.mean([len({ids[j] for j in w} & {h.id for h in g}) / 10
                          for w, g in zip(want, got, strict=True)])
        assert recall >= 0.9, (spec, recall)
    index.save()
    again = load_index(tmp_path / "f")
    assert again.mode == "hnsw" and again.ef == index.ef
    assert again.filter_exponent_ == index.filter_exponent_ and again.distances_per_ef_ == index.distances_per_ef_


def test_faiss_filter_bitmaps_are_cached_until_a_write():
    x = clustered(400, 16)
    ids = [f"v{i}" for i in range(400)]
    index = FaissIndex(16, exact_threshold=100, hnsw_m=8, ef_construction=40, ef_search=32)
    index.upsert(ids, x, [{"categories": ["a" if i % 10 else "b"]} for i in range(400)])
    flt = parse_filter("category=b")
    assert index.plan(flt)["matched"] == 40
    assert {h.id for h in index.search_one(x[5], k=3, filter=flt)} <= {f"v{i}" for i in range(0, 400, 10)}
    index.upsert(["new"], x[5:6], [{"categories": ["b"]}])  # a write drops the evaluated filters
    assert index.plan(flt)["matched"] == 41
    assert index.search_one(x[5], k=1, filter=flt)[0].id == "new"
    index.delete(["new", "v0"])
    assert index.plan(flt)["matched"] == 39
    assert {h.id for h in index.search(x[:3], k=50, filter=flt)[0]} == {f"v{i}" for i in range(10, 400, 10)}


def test_faiss_compacts_after_many_deletes_and_drops_back_to_exact(tmp_path):
    x = clustered(2500, 8)
    ids = [f"v{i}" for i in range(2500)]
    index = FaissIndex(8, exact_threshold=2000, ef_search=64)
    index.upsert(ids, x)
    assert index.mode == "hnsw"
    index.delete(ids[:1600])
    assert index.mode == "exact" and index.stats()["dead"] == 0 and len(index) == 900
    assert index.search_one(x[2000], k=1)[0].id == ids[2000]


def test_faiss_save_is_atomic(tmp_path, data):
    ids, x, _meta = data
    folder = tmp_path / "atomic"
    index = FaissIndex(DIM, folder)
    index.upsert(ids[:10], x[:10])
    index.save()
    state = json.loads((folder / "state.json").read_text())
    index.upsert(ids[10:20], x[10:20])

    def crash(_folder, _files):
        raise KeyboardInterrupt("killed after the new files, before state.json")

    index._after_save = crash  # the new generation is written and state.json replaced; cleanup never runs
    with pytest.raises(KeyboardInterrupt):
        index.save()
    assert len(load_index(folder)) == 20
    # a generation folder without a state.json pointing to it is ignored
    (folder / "state.json").write_text(json.dumps(state))
    assert len(load_index(folder)) == 10


def test_registry_and_config():
    assert {"faiss", "milvus"} <= set(INDEX_BACKENDS.list())
    with pytest.raises(ConfigError, match="unknown index backend 'annoy'"):
        create_index("annoy", 8)
    with pytest.raises(ConfigError, match="has no parameter 'nprobe'"):
        create_index("faiss", 8, nprobe=3)
    cfg = IndexConfig.from_dict({"backend": "faiss", "exact_threshold": 10})
    assert cfg.backend_params()["exact_threshold"] == 10
    with pytest.raises(ConfigError, match=r"index\.hnsw_m"):
        IndexConfig.from_dict({"hnsw_m": 1})


def test_index_section_of_the_library_config(tmp_path):
    from vidlens.retrieval.library_index import index_config

    cfg = load_config(environ={})
    assert cfg.index == IndexConfig() and cfg.index.backend == "faiss" and cfg.index.ef_search is None
    (tmp_path / "vidlens.toml").write_text('[index]\nbackend = "milvus"\nhnsw_m = 24\nmilvus_uri = "x.db"\n')
    cfg = load_config(tmp_path, environ={"VIDLENS_INDEX__EF_SEARCH": "128"})
    assert (cfg.index.backend, cfg.index.hnsw_m, cfg.index.ef_search) == ("milvus", 24, 128)
    assert cfg.index.backend_params() == {"hnsw_m": 24, "ef_construction": 40, "ef_search": 128,
                                          "target_recall": 0.95, "uri": "x.db", "collection": "vidlens"}
    again = tmp_path / "again.toml"
    again.write_text(config_to_toml(cfg))
    assert load_config(config_file=again, environ={}) == cfg
    # a library's section is the base; the CLI's --backend (a dict) changes only what it names
    lib = SimpleNamespace(config=cfg)
    assert index_config(lib).hnsw_m == 24
    assert (index_config(lib, {"backend": "faiss"}).backend, index_config(lib, {"backend": "faiss"}).hnsw_m) == (
        "faiss", 24)
    for env, key in [({"VIDLENS_INDEX__NPROBE": "3"}, "index.nprobe"),
                     ({"VIDLENS_INDEX__BACKEND": "annoy"}, "index.backend"),
                     ({"VIDLENS_INDEX__HNSW_M": "1"}, "index.hnsw_m"),
                     ({"VIDLENS_INDEX__MILVUS_COLLECTION": "no spaces"}, "index.milvus_collection")]:
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(environ=env)
    with pytest.raises(ConfigError, match=r"index\.nprobe"):
        index_config(lib, {"nprobe": 3})


def test_parse_filter_forms_and_errors():
    f = parse_filter(["category=美食|游戏", "duration=10..60", "date>=2024-01-01"])
    assert f.categories == ("美食", "游戏") and (f.min_duration, f.max_duration) == (10, 60)
    assert f.date_from == 1_704_067_200 and f.date_to is None
    assert parse_filter("date=2024-01-01").date_to == 1_704_067_200 + DAY - 1
    assert SearchFilter().empty and parse_filter(None).empty
    assert 'array_contains_any(categories, ["美食", "游戏"])' in f.to_milvus_expr()
    for bad in ("colour=red", "duration>=abc", "date>=yesterday", "category>=x"):
        with pytest.raises(Exception, match="bad filter"):
            parse_filter(bad)
