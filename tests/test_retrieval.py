"""Search, similar videos, near-duplicates and the library indexes, on generated clips with tiny encoders.

Frames are embedded by a colour-layout stand-in and text by the registered ``hashed_ngrams`` encoder
(lexical, no model), so a subprocess can rebuild the query encoder by name for the CLI test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from _cli import run_vidlens

import vidlens
from vidlens.errors import MediaError, NotFoundError, VidlensError
from vidlens.retrieval import (
    FrameWhitening,
    VideoEmbedder,
    align,
    cached_library_index,
    dedup,
    open_library_index,
    search,
    similar,
    write_dedup_report,
)
from vidlens.retrieval.copy_descriptors import (
    AUGMENTATIONS,
    CopyDescriptorConfig,
    CopyVectorCache,
    augment_clip,
    content_box,
    frames_copy_vectors,
)
from vidlens.retrieval.dedup import library_copy_vectors
from vidlens.retrieval.lexical import CharBM25, HashedNgramEncoder
from vidlens.retrieval.metrics import micro_average_precision, recall_at, target_ranks


class LayoutBank:
    """EncoderBank stand-in: colour layout for frames, hashed n-grams for text, loudness for audio."""

    def __init__(self):
        self.text_encoder = HashedNgramEncoder()
        self.text_encoder.name = "hashed_ngrams"

    def key_of(self, feature):
        if feature.startswith("text."):
            return f"{self.text_encoder.name}@{self.text_encoder.version}"
        return f"layout-{'frames' if feature == 'cover' else feature}@1"

    def frames(self, frames):
        n, h, w, _ = frames.shape
        x = frames.astype(np.float32) / 255
        grid = [x[:, i * h // 4:(i + 1) * h // 4, j * w // 4:(j + 1) * w // 4].mean(axis=(1, 2))
                for i in range(4) for j in range(4)]
        emb = np.concatenate([*grid, x.reshape(n, -1, 3).std(1)], axis=1)
        name = "red thing" if emb[:, 0].mean() > 0.6 and emb[:, 1].mean() < 0.3 else "pattern"
        return emb, [{"name": name, "score": 0.9}]

    def audio(self, wave):
        n = max(1, len(wave) // 16000)
        return np.stack([np.array([np.abs(b).mean(), b.std()], np.float32) for b in np.array_split(wave, n)])

    def asr(self, wave, language=None):
        return {"language": "en", "language_probability": 1.0, "text": "", "segments": []}

    def ocr(self, frames, times, max_frames):
        return {"lines": [], "text": "", "frames_read": []}

    def text(self, texts):
        return self.text_encoder.encode_batch(texts)


def query_encoder():
    enc = HashedNgramEncoder()
    enc.name = "hashed_ngrams"
    return enc


CLIPS = [
    # name, make_clip kwargs, title, labels, extra
    ("cook.mp4", {"pattern": "testsrc2", "size": (160, 120)}, "红烧肉的做法 家常菜", ["美食", "家常菜"],
     {"pubdate": "2024-03-01"}),
    ("game.mp4", {"pattern": "smptebars", "size": (160, 120)}, "王者荣耀 游戏 高光时刻", ["游戏", "手游"],
     {"pubdate": "2024-05-01"}),
    ("music.mp4", {"pattern": "rgbtestsrc", "size": (160, 120)}, "钢琴 音乐 piano music", ["音乐", "纯音乐"],
     {"pubdate": "2024-07-01"}),
    ("red.mp4", {"color": "red", "size": (160, 120), "audio": False}, "red screen test", ["测试"], {}),
    # a copy of cook.mp4, shrunk and re-encoded (made from it by the fixture)
    ("cook_copy.mp4", {"copy_of": "cook.mp4", "vf": "scale=96:72"}, "搬运 视频", ["美食"], {}),
]


@pytest.fixture(scope="module")
def built(tmp_path_factory, clip_factory):
    root = tmp_path_factory.mktemp("retrieval")
    clips = root / "clips"
    clips.mkdir()
    rows = []
    for name, kwargs, title, labels, extra in CLIPS:
        if "copy_of" in kwargs:
            ffmpeg_copy(clips / kwargs["copy_of"], clips / name, kwargs["vf"])
        else:
            shutil.copy(clip_factory(duration=4.0, **kwargs), clips / name)
        rows.append({"path": f"clips/{name}", "title": title, "labels": labels, **extra})
    manifest = root / "m.jsonl"
    manifest.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n", encoding="utf-8")
    lib = vidlens.open(root / "lib")
    report = lib.ingest(manifest)
    ids = {r.item.rsplit("/", 1)[-1]: r.video_id for r in report.results}
    assert len(ids) == len(CLIPS), [r.to_dict() for r in report.results]
    lib.extract(["frames", "cover", "audio", "text"], encoders=LayoutBank())
    lib.close()
    return root, ids


@pytest.fixture
def lib(built, tmp_path):
    root, ids = built
    copy = tmp_path / "lib"
    shutil.copytree(root / "lib", copy)
    with vidlens.open(copy) as lib:
        yield lib, ids


# -- embedder and alignment units ------------------------------------------------------------------------

def test_fused_vector_is_presence_aware():
    rng = np.random.default_rng(0)
    pooled = {"frames": (["a", "b", "c"], rng.random((3, 8))), "audio": (["a", "c"], rng.normal(size=(2, 4))),
              "text.title": (["a", "b"], rng.normal(size=(2, 6)))}
    emb = VideoEmbedder().fit(pooled)
    assert emb.block_dims == {"visual": 8, "audio": 4, "text": 6}
    vec, has = emb.video_vectors(["a", "b", "c", "d"], pooled)
    assert has.tolist() == [True, True, True, False]
    np.testing.assert_allclose(np.linalg.norm(vec[:3], axis=1), 1.0, atol=1e-5)
    assert not vec[3].any()
    assert not vec[1, 8:12].any() and vec[2, 12:].sum() == 0  # b has no audio, c no text: zero blocks …
    # … and the blocks it has carry all the weight: visual alone is a unit block for c? no: visual + audio
    np.testing.assert_allclose(np.linalg.norm(vec[2, :8]) ** 2 + np.linalg.norm(vec[2, 8:12]) ** 2, 1, atol=1e-5)
    state = VideoEmbedder.from_state(json.loads(json.dumps(emb.state())))
    np.testing.assert_allclose(state.video_vectors(["a"], pooled)[0], vec[:1], atol=1e-6)


def test_alignment_handles_speed_change_and_trimming():
    rng = np.random.default_rng(1)
    ref = FrameWhitening(min_frames=10**9).transform(rng.normal(size=(20, 128)))
    noisy = lambda x: FrameWhitening(min_frames=10**9).transform(x + 0.06 * rng.normal(size=x.shape))  # noqa: E731
    trimmed = noisy(ref[5:15])
    al = align(trimmed, ref)
    assert al.score > 0.7 and al.pairs[0] == (0, 5) and al.pairs[-1] == (9, 14)
    fast = noisy(ref[::2])  # played at 2x
    al = align(fast, ref)
    assert al.score > 0.7 and len(al.pairs) >= 8
    _seg_a, seg_b = al.segments(np.arange(10.0), np.arange(20.0))
    assert seg_b[0] <= 1 and seg_b[1] >= 18
    other = FrameWhitening(min_frames=10**9).transform(rng.normal(size=(10, 128)))
    assert align(other, ref).score < 0.4
    assert align(np.zeros((0, 128)), ref).score == 0.0


def test_content_box_finds_letterbox_bars_under_a_logo():
    rng = np.random.default_rng(2)
    frames = np.zeros((4, 120, 160, 3), np.uint8)
    frames[:, 20:100, 10:150] = rng.integers(40, 255, size=(4, 80, 140, 3), dtype=np.uint8)
    frames[:, 2:12, 100:140] = 255  # a logo stamped over the top bar
    frames[:, 30:50, 30:40] = 0  # dark content inside the picture stays
    assert content_box(frames) == (20, 100, 10, 150)
    assert content_box(frames[:, 20:100, 10:150]) == (0, 80, 0, 140)
    assert content_box(np.zeros((2, 40, 40, 3), np.uint8)) == (14, 26, 14, 26)  # all black: at most 35 % a side
    assert content_box(np.zeros((2, 40, 40, 3), np.uint8), max_border=0.25) == (10, 30, 10, 30)


def test_copy_vectors_pool_one_vector_per_second():
    frames = np.full((8, 60, 80, 3), 128, np.uint8)
    times = np.arange(8) / 4.0
    seen = []

    def encode(views):
        seen.append(views.shape)
        return views.reshape(len(views), -1)[:, :6].astype(np.float32)

    out = frames_copy_vectors(frames, times, encode, CopyDescriptorConfig(augment_frames=3))
    assert seen == [(16, 256, 256, 3), (6, 256, 256, 3)]  # two views a frame, then 3 edited frames
    assert out.vectors.shape == (2, 6) and out.times.tolist() == [0.0, 1.0]
    assert out.pairs.shape == (3, 2, 6)
    seen.clear()
    assert len(frames_copy_vectors(frames, times, encode, CopyDescriptorConfig(augment_frames=0)).pairs) == 0
    assert seen == [(16, 256, 256, 3)]
    with pytest.raises(ValueError, match="grid"):
        CopyDescriptorConfig(grid=3)


def test_frame_encoder_uses_projected_grid_features_when_the_bank_has_them():
    from vidlens.retrieval.copy_descriptors import frame_encoder

    class GridBank(LayoutBank):
        def has_frame_grid(self):
            return True

        def frame_grid(self, frames):
            return np.tile(self.frames(frames)[0], (1, 80))  # 51 · 80 = 4080 columns

    views = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    encode, key = frame_encoder(GridBank(), CopyDescriptorConfig(grid_dim=256))
    assert key.endswith("+grid2") and encode(views).shape == (3, 256)
    encode, key = frame_encoder(GridBank(), CopyDescriptorConfig(grid_dim=0))
    assert encode(views).shape == (3, 4080)
    encode, key = frame_encoder(GridBank(), CopyDescriptorConfig(grid=1))
    assert not key.endswith("+grid2") and encode(views).shape == (3, 51)
    encode, key = frame_encoder(LayoutBank(), CopyDescriptorConfig())  # no grid features: pooled ones
    assert not key.endswith("+grid2") and encode(views).shape == (3, 51)


def test_augment_clip_edits_every_frame_alike_and_is_seeded():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 72, 96, 3), dtype=np.uint8)
    kinds = set()
    for seed in range(40):
        kind, edited = augment_clip(frames, np.random.default_rng(seed))
        kinds.add(kind)
        assert len(edited) == 3 and len({e.shape for e in edited}) == 1 and edited[0].dtype == np.uint8
        assert not np.array_equal(edited[0], frames[0])  # at least re-encoded
        again_kind, again = augment_clip(frames, np.random.default_rng(seed))
        assert again_kind == kind and all(np.array_equal(a, b) for a, b in zip(again, edited, strict=True))
    assert kinds == set(AUGMENTATIONS)


def test_whitening_drops_the_directions_edits_move():
    rng = np.random.default_rng(3)
    n, d = 400, 32
    frames = rng.normal(size=(n, d)).astype(np.float32)
    frames[:, :4] *= 3.0  # four strong directions that edits disturb a lot (like fine texture under JPEG)
    edit = np.zeros_like(frames)
    edit[:, :4] = rng.normal(scale=3.0, size=(n, 4))
    edited = frames + edit + 0.05 * rng.normal(size=frames.shape).astype(np.float32)
    pairs = np.stack([frames, edited], axis=1)
    plain = FrameWhitening(dim=16, min_frames=10).fit(frames)
    invariant = FrameWhitening(dim=16, min_frames=10).fit(frames, pairs)
    assert plain.rotation_ is None and invariant.rotation_.shape == (d, 16)

    def copy_vs_other(w):
        a, b, c = w.transform(frames[:100]), w.transform(edited[:100]), w.transform(frames[100:200])
        return float(np.mean(np.sum(a * b, 1))), float(np.mean(np.sum(a * c, 1)))

    plain_copy, _ = copy_vs_other(plain)
    inv_copy, inv_other = copy_vs_other(invariant)
    assert inv_copy > 0.9 > plain_copy and abs(inv_other) < 0.2
    restored = FrameWhitening.from_state(invariant.state())
    np.testing.assert_allclose(restored.transform(frames[:5]), invariant.transform(frames[:5]), atol=1e-6)
    # too few pairs: plain whitening
    assert FrameWhitening(dim=16, min_frames=10).fit(frames, pairs[:5]).rotation_ is None


def test_copy_vector_cache_round_trip(tmp_path):
    from vidlens.retrieval.copy_descriptors import CopyVectors

    cache = CopyVectorCache(tmp_path, "enc@1", CopyDescriptorConfig())
    cache.put("a", CopyVectors(np.ones((3, 4)), np.arange(3.0), np.ones((2, 2, 4))))
    cache.put("b", CopyVectors(np.zeros((1, 4)), np.zeros(1), np.zeros((0, 2, 4))))
    cache.save()
    again = CopyVectorCache(tmp_path, "enc@1", CopyDescriptorConfig())
    assert set(again.vectors) == {"a", "b"}
    assert again.get("a").vectors.shape == (3, 4) and again.get("a").pairs.shape == (2, 2, 4)
    assert again.get("b").pairs.shape == (0, 2, 4) and again.get("b").times.tolist() == [0.0]
    assert "a" not in CopyVectorCache(tmp_path, "enc@1", CopyDescriptorConfig(grid=1))  # keyed by parameters


def test_metrics():
    scores = np.array([[0.9, 0.1, 0.3], [0.2, 0.1, 0.8], [0.5, 0.5, 0.1]])
    ranks = target_ranks(scores, [0, 1, 1])
    assert ranks.tolist() == [1, 3, 2]
    m = recall_at(ranks, (1, 2))
    assert m["R@1"] == pytest.approx(1 / 3) and m["R@2"] == pytest.approx(2 / 3) and m["mean_rank"] == 2
    assert micro_average_precision([0.9, 0.8, 0.1], [True, False, True], 3) == pytest.approx((1 + 2 / 3) / 3)
    bm25 = CharBM25().fit(["红烧肉的做法", "王者荣耀", ""])
    assert int(np.argmax(bm25.scores("红烧肉"))) == 0


# -- search ----------------------------------------------------------------------------------------------

def test_search_text_queries_and_filters(lib):
    lib, ids = lib
    messages: list[str] = []
    hits = search(lib, "红烧肉 做法", k=3, text_encoder=query_encoder(), messages=messages)
    assert hits[0]["id"] == ids["cook.mp4"] and hits[0]["title"] == "红烧肉的做法 家常菜"
    assert any("building it from stored features" in m for m in messages)
    assert search(lib, "piano", k=1, text_encoder=query_encoder())[0]["id"] == ids["music.mp4"]
    assert search(lib, "🎹🎵 钢琴 music!!", k=1, text_encoder=query_encoder())[0]["id"] == ids["music.mp4"]
    long = search(lib, "游戏 " * 3000, k=2, text_encoder=query_encoder())  # 15 kB
    assert long[0]["id"] == ids["game.mp4"]
    only_food = search(lib, "游戏", k=5, filters=["category=美食"], text_encoder=query_encoder())
    assert {h["id"] for h in only_food} == {ids["cook.mp4"], ids["cook_copy.mp4"]}
    dated = search(lib, "音乐", k=5, filters=["date=2024-04-01..2024-12-31"], text_encoder=query_encoder())
    assert {h["id"] for h in dated} == {ids["game.mp4"], ids["music.mp4"]}
    assert search(lib, "音乐", k=5, filters=["duration>=100"], text_encoder=query_encoder()) == []
    for bad in ("", "   \n\t ", "\x00\x01"):
        with pytest.raises(VidlensError, match="empty query"):
            search(lib, bad, text_encoder=query_encoder())
    with pytest.raises(VidlensError, match="bad filter"):
        search(lib, "x", filters=["colour=red"], text_encoder=query_encoder())


def test_query_encoder_must_match_library(lib):
    lib, _ = lib
    other = HashedNgramEncoder(n_max=2)
    other.name = "hashed_ngrams"
    with pytest.raises(VidlensError, match="text vectors were made by hashed_ngrams@"):
        search(lib, "音乐", text_encoder=other)


def test_index_missing_stale_and_rebuilt(lib, clip_factory, tmp_path):
    lib, _ids = lib
    enc = query_encoder()
    search(lib, "音乐", text_encoder=enc)
    space = open_library_index(lib, "text")
    assert space.messages == [] and len(space.index) == 5
    space.close()
    # files missing: rebuilt with a message
    folder = lib.root / "index" / "text"
    for gen in folder.glob("gen-*"):
        shutil.rmtree(gen)
    space = open_library_index(lib, "text")
    assert "missing" in space.messages[0] and "rebuilding" in space.messages[0] and len(space.index) == 5
    space.close()
    # stale: a new video and a changed title are picked up by upserts
    new = tmp_path / "new.mp4"
    shutil.copy(clip_factory(duration=1.0, size=(64, 48), color="blue"), new)
    lib.ingest([new])
    lib.extract(["frames", "cover", "text"], encoders=LayoutBank())
    messages: list[str] = []
    search(lib, "音乐", text_encoder=enc, messages=messages)
    assert any("stale" in m for m in messages)
    space = open_library_index(lib, "video")
    assert len(space.index) == 6
    space.close()


def test_search_keeps_the_index_open_until_something_changes(lib, clip_factory, tmp_path, monkeypatch):
    import vidlens.encoders as encoders
    module = sys.modules["vidlens.retrieval.library_index"]

    lib, ids = lib
    opened = []
    real_open = module._open
    monkeypatch.setattr(module, "_open", lambda *a, **kw: opened.append(kw.get("current")) or real_open(*a, **kw))
    built = []
    real_create = encoders.create_encoder
    monkeypatch.setattr(encoders, "create_encoder", lambda name, **kw: built.append(name) or real_create(name))
    assert search(lib, "红烧肉", k=1)[0]["id"] == ids["cook.mp4"]  # the query encoder by its registry name
    first = cached_library_index(lib, "text").index
    assert len(opened) == 1 and built == ["hashed_ngrams"]
    search(lib, "piano", k=1)
    search(lib, "游戏", k=2, filters=["category=美食"])
    assert len(opened) == 1 and built == ["hashed_ngrams"] and cached_library_index(lib, "text").index is first
    # the index files rewritten (another process, `vidlens index --rebuild`): loaded again
    open_library_index(lib, "text", rebuild=True).close()
    assert search(lib, "piano", k=1)[0]["id"] == ids["music.mp4"]
    assert len(opened) == 3 and opened[-1] is None and cached_library_index(lib, "text").index is not first
    # a new video: upserted into the open index in place, with the stale message
    current = cached_library_index(lib, "text")
    new = tmp_path / "new.mp4"
    shutil.copy(clip_factory(duration=1.0, size=(64, 48), color="blue"), new)
    lib.ingest([new])
    lib.extract(["frames", "cover", "text"], encoders=LayoutBank())
    messages: list[str] = []
    search(lib, "音乐", messages=messages)
    assert any("stale" in m for m in messages), messages
    assert opened[-1] is current.index
    assert cached_library_index(lib, "text").index is current.index and len(current.index) == 6
    assert built == ["hashed_ngrams"]
    lib.close()
    assert lib not in module._OPEN


def test_search_on_milvus_backend_matches_faiss(lib):
    pytest.importorskip("milvus_lite", reason="Milvus Lite is not installed (pip install pymilvus milvus-lite)")
    lib, ids = lib
    enc = query_encoder()
    faiss_hits = search(lib, "家常菜 游戏", k=5, text_encoder=enc)
    milvus_hits = search(lib, "家常菜 游戏", k=5, text_encoder=enc, index_config={"backend": "milvus"})
    assert [h["id"] for h in milvus_hits] == [h["id"] for h in faiss_hits]
    food = search(lib, "游戏", k=5, filters=["category=美食"], text_encoder=enc, index_config={"backend": "milvus"})
    assert {h["id"] for h in food} == {ids["cook.mp4"], ids["cook_copy.mp4"]}


def test_trained_two_tower_model_searches_the_library(lib):
    from vidlens.retrieval.two_tower import train_library_model

    lib, ids = lib
    pairs = [("做菜", ids["cook.mp4"]), ("美食 教程", ids["cook.mp4"]), ("打游戏", ids["game.mp4"]),
             ("听歌", ids["music.mp4"]), ("红色", ids["red.mp4"]), ("unknown id", "nope")]
    folder, history = train_library_model(lib, pairs, text_encoder=query_encoder(),
                                          config={"epochs_round1": 3, "warmup_epochs": 1, "epochs_round2": 1,
                                                  "batch_size": 4})
    assert folder == lib.root / "models" / "two_tower" and len(history) == 3
    messages: list[str] = []
    hits = search(lib, "红烧肉", k=2, model="auto", text_encoder=query_encoder(), messages=messages)
    assert len(hits) == 2 and "two-tower" in messages[0]
    assert {h["id"] for h in search(lib, "x", k=5, filters=["category=美食"], model="auto",
                                    text_encoder=query_encoder())} == {ids["cook.mp4"], ids["cook_copy.mp4"]}
    with pytest.raises(NotFoundError, match="no two-tower model"):
        search(lib, "x", model=lib.root / "nothing", text_encoder=query_encoder())


# -- similar and dedup --------------------------------------------------------------------------------------

def test_similar_by_id_and_by_file(lib, built, clip_factory, tmp_path):
    lib, ids = lib
    _root, _ = built
    hits = similar(lib, ids["cook.mp4"][:8], k=3)
    assert ids["cook.mp4"] not in {h["id"] for h in hits}
    assert hits[0]["id"] == ids["cook_copy.mp4"]
    outside = tmp_path / "outside.mp4"
    shutil.copy(clip_factory(duration=3.0, pattern="smptebars", size=(128, 96)), outside)
    hits = similar(lib, outside, k=2, encoders=LayoutBank())
    assert hits[0]["id"] == ids["game.mp4"]
    with pytest.raises(NotFoundError, match="neither a video id"):
        similar(lib, "ffffffffffff", k=2)
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00not a video" * 50)
    with pytest.raises(MediaError):
        similar(lib, garbage, k=2, encoders=LayoutBank())
    with pytest.raises(MediaError, match="not a readable file"):
        similar(lib, tmp_path, k=2, encoders=LayoutBank())


def test_dedup_groups_copies_and_writes_report(lib):
    lib, ids = lib
    groups = dedup(lib, encoders=LayoutBank())
    assert len(groups) == 1, groups
    assert set(groups[0]["videos"]) == {ids["cook.mp4"], ids["cook_copy.mp4"]}
    pair = groups[0]["pairs"][0]
    assert pair["score"] >= 0.5 and pair["segment_a"][1] > pair["segment_a"][0]
    page = write_dedup_report(lib, groups)
    text = page.read_text(encoding="utf-8")
    assert "红烧肉的做法" in text and f"../thumbnails/{ids['cook.mp4']}.jpg" in text


def ffmpeg_copy(src, dst, vf):
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(src), "-an", "-vf", vf,
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", "30", str(dst)], check=True)
    return dst


def test_dedup_finds_letterboxed_and_cropped_copies(clip_factory, tmp_path):
    src = clip_factory(duration=4.0, pattern="testsrc2", size=(192, 108), audio=False)
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(src, clips / "original.mp4")
    ffmpeg_copy(src, clips / "letterbox.mp4", "scale=160:90,pad=160:160:0:35:black")
    ffmpeg_copy(src, clips / "pillarbox.mp4", "pad=288:108:48:0:black")
    ffmpeg_copy(src, clips / "crop.mp4", "crop=154:86,scale=192:108")
    for pattern in ("smptebars", "rgbtestsrc", "mandelbrot"):
        shutil.copy(clip_factory(duration=4.0, pattern=pattern, size=(192, 108), audio=False),
                    clips / f"{pattern}.mp4")
    with vidlens.open(tmp_path / "lib") as lib:
        ids = {r.item.rsplit("/", 1)[-1]: r.video_id for r in lib.ingest(clips).results}
        groups = dedup(lib, encoders=LayoutBank())
        assert (lib.root / "dedup").is_dir() and any((lib.root / "dedup").iterdir())  # cached
        copies = {ids[n] for n in ("original.mp4", "letterbox.mp4", "pillarbox.mp4", "crop.mp4")}
        assert len(groups) == 1 and set(groups[0]["videos"]) == copies, groups
        score = {frozenset((p["a"], p["b"])): p for p in groups[0]["pairs"]}

        def pair(name):
            return score[frozenset((ids["original.mp4"], ids[name]))]

        # with the borders cut the picture is the same (≈ 0.6 without the cut); the centre view carries
        # the crop (≈ 0.65 without it)
        assert pair("letterbox.mp4")["score"] > 0.95 and pair("pillarbox.mp4")["score"] > 0.95
        assert pair("crop.mp4")["score"] > 0.85
        assert pair("letterbox.mp4")["segment_a"][1] - pair("letterbox.mp4")["segment_a"][0] >= 3  # whole clip
        assert dedup(lib, encoders=LayoutBank()) == groups  # again, from the cache
        cached = library_copy_vectors(lib, encoders=LayoutBank())
        assert all(len(v.pairs) == 4 for v in cached.values())  # 4 frames a clip, each also edited


def test_library_stops_making_edited_pairs_once_it_has_enough(clip_factory, tmp_path):
    clips = tmp_path / "clips"
    clips.mkdir()
    for pattern in ("testsrc2", "smptebars", "rgbtestsrc"):
        shutil.copy(clip_factory(duration=3.0, pattern=pattern, size=(96, 72), audio=False), clips / f"{pattern}.mp4")
    with vidlens.open(tmp_path / "lib") as lib:
        lib.ingest(clips)
        described = library_copy_vectors(lib, encoders=LayoutBank(), max_pairs=4)
        with_pairs = sorted(len(v.pairs) for v in described.values())
        assert with_pairs == [0, 3, 3], with_pairs  # the third video came after 6 ≥ 4 pairs were kept
        assert all(len(v.vectors) == 3 for v in described.values())


# -- command line (a real subprocess) ---------------------------------------------------------------------

run = run_vidlens


def test_cli_search_similar_dedup(lib):
    lib, ids = lib
    root = lib.root
    proc = run("-L", root, "search", "红烧肉", "--json", "-k", "2", "--filter", "duration<=10")
    out = json.loads(proc.stdout)
    assert out["results"][0]["id"] == ids["cook.mp4"]
    assert "building it from stored features" in proc.stderr
    out = json.loads(run("-L", root, "similar", ids["cook.mp4"], "--json", "-k", "1").stdout)
    assert out["results"][0]["id"] == ids["cook_copy.mp4"]
    out = json.loads(run("-L", root, "dedup", "--json").stdout)
    assert len(out["groups"]) == 1 and (root / "reports" / "dedup.html").exists()
    bad = run("-L", root, "similar", "no-such-video", check=False)
    assert bad.returncode == 2 and "neither a video id" in bad.stderr
