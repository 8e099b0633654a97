"""The HTTP service through its API (FastAPI TestClient), with stand-in encoders so analysis is instant."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service needs: pip install 'vidlens[service]'")
from fastapi.testclient import TestClient

import vidlens
from vidlens.service import ServiceSettings, create_app
from vidlens.service.jobs import Job
from vidlens.service.security import RedactingFilter, redact
from vidlens.service.testing import StandInClassifier, StandInEncoders, StandInTagger
from vidlens.service.textsearch import TextSearchIndex, tokenize
from vidlens.store.models import utcnow

API = "/api/v1"
SPOKEN = "pineapple harbour"


@pytest.fixture(scope="module")
def speech_clip(clip_factory) -> Path:
    return clip_factory(duration=2.0, size=(96, 64), speech=SPOKEN, lang="en")


@pytest.fixture(scope="module")
def silent_clip(clip_factory) -> Path:
    return clip_factory(duration=1.0, size=(96, 64), color="red", audio=False)


def make_client(root: Path, bank=None, **settings) -> TestClient:
    settings.setdefault("job_stale_after_s", 1.0)
    settings.setdefault("search_refresh_s", 0.3)
    app = create_app(root, ServiceSettings(**settings), encoders=bank or StandInEncoders(transcript=SPOKEN),
                     engines={"classifier": StandInClassifier(), "tagger": StandInTagger(["pineapple", "露营装备"])})
    return TestClient(app)


def auth(client: TestClient) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.app.state.vidlens.token}"}


def wait_job(client: TestClient, job_id: str, timeout: float = 180.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"{API}/jobs/{job_id}").json()
        if job["status"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def upload(client: TestClient, path: Path, **params) -> dict:
    r = client.post(f"{API}/videos", params=params, content=path.read_bytes(), headers=auth(client))
    assert r.status_code in (200, 201), r.text
    return r.json()


@pytest.fixture
def client(tmp_path):
    with make_client(tmp_path / "lib") as c:
        yield c


def test_health_openapi_and_web_app(client):
    assert client.get("/healthz").json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/videos", "/api/v1/search", "/api/v1/jobs/{job_id}", "/api/v1/feedback", "/metrics"):
        assert path in spec["paths"]
    page = client.get("/")
    assert page.status_code == 200 and "vidlens" in page.text
    assert client.get("/static/app.js").status_code == 200


def test_write_endpoints_need_the_token(client, speech_clip):
    body = speech_clip.read_bytes()
    assert client.post(f"{API}/videos", content=body).status_code == 401
    assert client.post(f"{API}/videos", content=body, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert client.post(f"{API}/jobs", json={"kind": "extract"}).status_code == 401
    assert client.post(f"{API}/feedback", json={"events": []}).status_code == 401
    assert client.put(f"{API}/taxonomy", json={"categories": []}).status_code == 401
    assert client.get(f"{API}/feedback").status_code == 401
    # The token file is private and the token never travels in a query string.
    token_file = Path(client.app.state.vidlens.lib.root) / "service" / "api_token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    r = client.post(f"{API}/videos", params={"token": client.app.state.vidlens.token}, content=body)
    assert r.status_code == 401
    assert client.post(f"{API}/jobs", json={"kind": "extract"}, headers={
        "X-API-Token": client.app.state.vidlens.token}).status_code == 202


def test_upload_analyse_show_search_and_play(client, speech_clip):
    bank = client.app.state.vidlens.encoders
    up = upload(client, speech_clip, title="Harbour walk", summary="a short clip")
    assert up["status"] == "added" and up["has_audio"] and up["job"]["kind"] == "analyse"
    job = wait_job(client, up["job"]["id"])
    assert job["status"] == "done" and job["done"] == job["total"] == 1, job
    vid = up["video_id"]

    detail = client.get(f"{API}/videos/{vid[:8]}").json()
    assert detail["id"] == vid and detail["title"] == "Harbour walk"
    assert detail["transcript"]["text"] == SPOKEN and detail["transcript"]["segments"]
    assert detail["ocr"][0]["text"] == "SALE" and detail["concepts"]
    assert detail["features"]["asr"]["status"] == "ok"
    assert detail["paths"] is None  # server paths only for token holders
    assert client.get(f"{API}/videos/{vid}", headers=auth(client)).json()["paths"]

    hits = client.get(f"{API}/search", params={"q": "pineapple"}).json()
    assert [h["id"] for h in hits["items"]] == [vid] and "asr" in hits["items"][0]["matched"]
    assert client.get(f"{API}/search", params={"q": "harbour", "has_speech": "false"}).json()["total"] == 0
    assert client.get(f"{API}/search", params={"q": "harbour", "max_duration": 1}).json()["total"] == 0

    media = client.get(detail["media_url"], headers={"Range": "bytes=0-99"})
    assert media.status_code == 206 and len(media.content) == 100
    assert media.headers["content-range"].startswith("bytes 0-99/") and media.headers["content-type"] == "video/mp4"
    thumb = client.get(detail["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.content[:2] == b"\xff\xd8"

    # The same bytes again (new title): same video, no second analysis of the media.
    calls = dict(bank.calls)
    again = upload(client, speech_clip, title="Harbour walk, again")
    assert again["video_id"] == vid and again["status"] == "updated"
    wait_job(client, again["job"]["id"])
    assert bank.calls["asr"] == calls["asr"] == 1 and bank.calls["frames"] == calls["frames"]
    assert client.get(f"{API}/search", params={"q": "again"}).json()["items"][0]["id"] == vid

    listing = client.get(f"{API}/videos").json()
    assert listing["total"] == 1 and listing["items"][0]["thumbnail_url"]
    status = client.get(f"{API}/status").json()
    assert status["videos"] == 1 and status["features"]["asr"] == {"ok": 1} and status["library"] is None


def test_multipart_upload_ignores_client_name_and_type(client, speech_clip):
    root = Path(client.app.state.vidlens.lib.root)
    r = client.post(f"{API}/videos", headers=auth(client), data={"title": "多部分上传", "analyse": "false"},
                    files={"file": ("../../../evil.sh", speech_clip.read_bytes(), "text/x-shellscript")})
    assert r.status_code == 201, r.text
    assert r.json()["job"] is None
    stored = sorted(p.name for p in (root / "uploads").iterdir() if p.is_file())
    assert stored == [f"{r.json()['video_id']}.mp4"]
    assert not (root.parent / "evil.sh").exists() and not list((root / "uploads" / ".incoming").iterdir())
    assert client.get(f"{API}/videos/{r.json()['video_id']}").json()["title"] == "多部分上传"


def test_bad_uploads_are_refused_and_leave_nothing(client, speech_clip):
    root = Path(client.app.state.vidlens.lib.root)
    h = auth(client)
    assert client.post(f"{API}/videos", content=b"", headers=h).status_code == 400
    r = client.post(f"{API}/videos", content=b"#!/bin/sh\necho not a video\n" * 50, headers=h)
    assert r.status_code == 415 and "not a readable" in r.json()["detail"]
    truncated = speech_clip.read_bytes()[:3000]
    assert client.post(f"{API}/videos", content=truncated, headers=h).status_code == 415
    client.app.state.vidlens.settings.max_upload_bytes = 10_000
    r = client.post(f"{API}/videos", content=speech_clip.read_bytes(), headers=h)
    assert r.status_code == 413

    def chunks():
        for _ in range(20):
            yield b"\0" * 1024

    assert client.post(f"{API}/videos", content=chunks(), headers=h).status_code == 413  # no Content-Length
    r = client.post(f"{API}/videos", headers=h, files={"file": ("a.mp4", speech_clip.read_bytes(), "video/mp4")})
    assert r.status_code == 413
    r = client.post(f"{API}/videos", headers={**h, "Content-Type": "multipart/form-data; boundary=xyz"},
                    content=b"--xyz\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nno file\r\n--xyz--\r\n")
    assert r.status_code == 400
    assert not [p for p in (root / "uploads").rglob("*") if p.is_file()]
    assert client.get(f"{API}/status").json()["videos"] == 0


def test_same_work_is_queued_once_and_run_once(tmp_path, speech_clip, silent_clip):
    bank = StandInEncoders(transcript=SPOKEN, delay=0.05)
    with make_client(tmp_path / "lib", bank) as client:
        ids = [upload(client, clip, analyse="false")["video_id"] for clip in (speech_clip, silent_clip)]
        results: list[dict] = []

        def submit():
            r = client.post(f"{API}/jobs", json={"kind": "extract", "video_ids": ids}, headers=auth(client))
            results.append(r.json())

        threads = [threading.Thread(target=submit) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len({r["job"]["id"] for r in results}) == 1
        assert sum(r["created"] for r in results) == 1
        job = wait_job(client, results[0]["job"]["id"])
        assert job["status"] == "done" and job["total"] == 2
        # A second job on the same videos, and one on "all", find nothing left to do.
        calls = dict(bank.calls)
        for body in ({"kind": "extract", "video_ids": [ids[0][:6]]}, {"kind": "analyse"}):
            r = client.post(f"{API}/jobs", json=body, headers=auth(client))
            assert r.status_code == 202
            assert wait_job(client, r.json()["job"]["id"])["status"] == "done"
        assert dict(bank.calls) == calls and bank.calls["asr"] == 1  # the silent clip has no audio track
        assert client.post(f"{API}/jobs", json={"kind": "extract", "video_ids": ["ffffffff"]},
                           headers=auth(client)).status_code == 404


def test_jobs_resume_after_a_clean_stop_and_after_a_crash(tmp_path, clip_factory):
    clips = [clip_factory(duration=1.0, size=(64, 48), color=c, tone_hz=200 + 50 * i)
             for i, c in enumerate(("red", "green", "blue", "white"))]
    lib_dir = tmp_path / "lib"
    slow = StandInEncoders(delay=0.05)
    with make_client(lib_dir, slow) as client:
        ids = [upload(client, clip, analyse="false")["video_id"] for clip in clips]
        job_id = client.post(f"{API}/jobs", json={"kind": "extract", "video_ids": ids},
                             headers=auth(client)).json()["job"]["id"]
        deadline = time.monotonic() + 20
        while client.get(f"{API}/jobs/{job_id}").json()["done"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
    # The server stopped mid-job: the job went back to the queue, with its finished videos kept.
    lib = vidlens.open(lib_dir)
    with lib.store.session() as s:
        job = s.get(Job, job_id)
        assert job.status == "queued" and job.done >= 1
    lib.close()
    fresh = StandInEncoders()
    with make_client(lib_dir, fresh) as client:
        job = wait_job(client, job_id)
        assert job["status"] == "done" and job["attempts"] == 2
    assert slow.calls["audio"] + fresh.calls["audio"] == 4  # each video's audio encoded exactly once

    # A crashed server leaves a running job with a stale heartbeat: the next start takes it over.
    lib = vidlens.open(lib_dir)
    with lib.store.session() as s:
        s.add(Job(id="c" * 32, kind="extract", params={"video_ids": ids, "modalities": None, "force": True},
                  group_key="extract:crashed", active_key="extract:crashed", status="running", owner="dead",
                  heartbeat_at=utcnow() - timedelta(minutes=5), attempts=1, result={}))
        s.commit()
    lib.close()
    again = StandInEncoders()
    with make_client(lib_dir, again) as client:
        job = wait_job(client, "c" * 32)
        assert job["status"] == "done" and job["attempts"] == 2 and again.calls["audio"] == 4


def test_register_server_paths_only_under_allowed_roots(tmp_path, speech_clip, silent_clip):
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copy(speech_clip, videos / "talk.mp4")
    shutil.copy(silent_clip, videos / "red.mp4")
    (videos / "m.jsonl").write_text(json.dumps({"path": "talk.mp4", "title": "清单标题"}) + "\n"
                                    + json.dumps({"path": "/etc/hostname"}) + "\n")
    with make_client(tmp_path / "nolib") as client:
        r = client.post(f"{API}/ingest", json={"paths": [str(videos)]}, headers=auth(client))
        assert r.status_code == 403
    with make_client(tmp_path / "lib", ingest_roots=[videos]) as client:
        h = auth(client)
        assert client.post(f"{API}/ingest", json={"paths": ["/etc"]}, headers=h).status_code == 403
        assert client.post(f"{API}/ingest", json={"paths": [f"{videos}/../"]}, headers=h).status_code == 403
        assert client.post(f"{API}/ingest", json={"paths": ["missing.mp4"]}, headers=h).status_code == 404
        r = client.post(f"{API}/ingest", json={"paths": [str(videos / "m.jsonl"), "red.mp4"]}, headers=h)
        assert r.status_code == 202
        job = wait_job(client, r.json()["job"]["id"])
        assert job["result"]["counts"] == {"added": 2, "updated": 0, "unchanged": 0, "failed": 1}
        failed = [i for i in job["result"]["items"] if i["status"] == "failed"]
        assert "outside the allowed ingest roots" in failed[0]["message"]
        wait_job(client, job["result"]["analyse_job"])
        assert client.get(f"{API}/search", params={"q": "清单"}).json()["total"] == 1
        assert client.get(f"{API}/search", params={"q": "pineapple"}).json()["total"] == 1


def test_feedback_taxonomy_reports_metrics(client):
    h = auth(client)
    events = [{"event": "click", "video_id": "abcdef0123456789abcd", "query": "红烧肉", "position": 2},
              {"event": "play", "video_id": "abcdef0123456789abcd", "dwell_ms": 5300}]
    assert client.post(f"{API}/feedback", json={"events": events}, headers=h).json() == {"stored": 2}
    stored = client.get(f"{API}/feedback", headers=h).json()
    assert [e["event"] for e in stored] == ["play", "click"] and stored[1]["query"] == "红烧肉"
    bad = {"events": [{"event": "hover", "video_id": "abcdef0123"}]}
    assert client.post(f"{API}/feedback", json=bad, headers=h).status_code == 422

    tax = client.get(f"{API}/taxonomy").json()
    assert tax["source"] == "default" and tax["level1"] > 20 and tax["level2"] > 100
    broken = {"categories": [{"name": "食品"}, {"name": "家常菜", "parent": "不存在"}]}
    assert client.put(f"{API}/taxonomy", json=broken, headers=h).status_code == 400
    small = {"categories": [{"name": "美食", "children": [{"name": "家常菜"}, {"name": "烘焙"}]}, {"name": "体育"}]}
    assert client.put(f"{API}/taxonomy", json=small, headers=h).json()["level2"] == 2
    assert client.get(f"{API}/taxonomy").json()["source"] == "library"

    reports = Path(client.app.state.vidlens.lib.root) / "reports"
    (reports / "eval-1").mkdir()
    (reports / "eval-1" / "report.json").write_text(json.dumps(
        {"accuracy": 0.8, "confusion_matrix": {"labels": ["a", "b"], "matrix": [[3, 1], [0, 4]]}}))
    (reports / "page.html").write_text("<script>alert(1)</script>")
    names = [r["name"] for r in client.get(f"{API}/reports").json()]
    assert sorted(names) == ["eval-1/report.json", "page.html"]
    assert client.get(f"{API}/reports/eval-1/report.json").json()["accuracy"] == 0.8
    html = client.get(f"{API}/reports/page.html")
    assert "sandbox" in html.headers["content-security-policy"]
    for evil in ("../library.db", "..%2Flibrary.db", "eval-1/../../library.db", "%2e%2e/library.db"):
        assert client.get(f"{API}/reports/{evil}").status_code == 404

    text = client.get("/metrics").text
    assert 'vidlens_http_requests_total{method="GET",route="/api/v1/taxonomy",status="200"}' in text
    assert "vidlens_http_request_duration_seconds_bucket" in text and 'vidlens_jobs{status="done"}' in text
    assert client.app.state.vidlens.token not in text


def test_cors_is_off_unless_configured(tmp_path):
    with make_client(tmp_path / "a") as client:
        r = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with make_client(tmp_path / "b", cors_origins=["https://ops.example"]) as client:
        r = client.get("/healthz", headers={"Origin": "https://ops.example"})
        assert r.headers["access-control-allow-origin"] == "https://ops.example"


def test_secrets_are_redacted_from_logs():
    assert "s3cr3t" not in redact("GET / Authorization: Bearer s3cr3t-token")
    assert "pw" not in redact("postgresql+psycopg://user:pw@db/x") and "user:***@db" in redact("postgresql://user:pw@db/x")
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:1", "GET", "/x?a=Bearer abc.def", "1.1", 200), None)
    RedactingFilter().filter(record)
    assert "abc.def" not in record.getMessage() and record.args[4] == 200


def test_keyword_index_updates_and_refreshes(tmp_path, speech_clip, silent_clip):
    assert tokenize("做红烧肉 Pork-Belly 2024") == ["做红", "红烧", "烧肉", "pork", "belly", "2024"]
    lib = vidlens.open(tmp_path / "lib")
    index = TextSearchIndex(lib.store, merge_at=2)
    index.rebuild()
    assert index.search("anything") == (0, [])
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": str(speech_clip), "title": "家常红烧肉做法"}) + "\n"
                        + json.dumps({"path": str(silent_clip), "title": "红色画面 red screen"}) + "\n")
    lib.ingest(manifest)
    assert index.refresh() == 2
    total, hits = index.search("红烧肉")
    assert total == 1 and hits[0].title == "家常红烧肉做法" and hits[0].matched == ["title"]
    assert index.search("红")[0] == 2 and index.search("red screen", min_duration=0.5)[0] == 1
    # The dense path (many postings) and the gathering path (forced by an id filter) agree.
    everyone = {v["id"] for v in lib.videos()}
    for q in ("红", "red screen", "pineapple 红烧肉"):
        assert index.search(q) == index.search(q, allowed=everyone)
        assert index.search(q, limit=1, offset=1) == index.search(q, limit=1, offset=1, allowed=everyone)
    manifest.write_text(json.dumps({"path": str(silent_clip), "title": "blue now"}) + "\n")
    lib.ingest(manifest)
    index.refresh()
    time.sleep(0.3)  # merge_at=2 rebuilds in the background
    assert index.search("red screen")[0] == 0 and index.search("blue")[0] == 1
    assert len(index) == 2
    lib.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_vidlens_serve_prints_token_once_and_serves(tmp_path, workers):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    lib = tmp_path / "lib"
    env = {**os.environ, "VIDLENS_LIBRARY": str(lib)}
    cmd = [sys.executable, "-m", "vidlens", "serve", "--port", str(port), "--no-access-log", "--log-level", "warning",
           "--workers", str(workers)]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        lines = []
        for line in proc.stderr:
            lines.append(line)
            if "serving" in line:
                break
        token = (lib / "service" / "api_token").read_text().strip()
        assert any("new API token" in x and token in x for x in lines), lines
        import httpx

        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert r.json()["status"] == "ok"
        r = httpx.post(f"http://127.0.0.1:{port}{API}/jobs", json={"kind": "extract"},
                       headers={"Authorization": f"Bearer {token}"}, timeout=5)
        assert r.status_code == 202
        assert (lib / "index" / "textsearch" / "CURRENT").is_file()  # the keyword index snapshot
    finally:
        proc.terminate()
        proc.wait(30)


def test_classification_is_wired_into_analysis_search_and_a_sync_endpoint(client, speech_clip, silent_clip):
    h = auth(client)
    first = upload(client, speech_clip, title="Harbour walk")
    second = upload(client, silent_clip, title="红烧肉")
    for up in (first, second):
        job = wait_job(client, up["job"]["id"])
        assert job["status"] == "done" and job["result"]["classify"]["classified"] == 1, job
    detail = client.get(f"{API}/videos/{first['video_id']}").json()
    assert detail["categories"][0] == {"level1": "体育", "level2": "足球", "score": 0.8, "level1_score": 0.8,
                                       "method": "zero-shot", "model": "stand-in"}
    status = client.get(f"{API}/status").json()
    assert status["capabilities"]["classify"]
    assert {c["name"]: c["count"] for c in status["categories"]} == {"美食": 1, "体育": 1}
    found = client.get(f"{API}/search", params={"q": "harbour 红烧肉", "category": "足球"}).json()
    assert [i["id"] for i in found["items"]] == [first["video_id"]]

    r = client.post(f"{API}/classify", params={"title": "烘焙 walk"}, content=speech_clip.read_bytes(), headers=h)
    assert r.status_code == 200, r.text
    # Same bytes, new title: re-analysed (the title is re-embedded) and re-classified.
    assert r.json()["video_id"] == first["video_id"] and r.json()["categories"][0]["level2"] == "烘焙"
    client.app.state.vidlens.settings.max_sync_seconds = 1.0
    r = client.post(f"{API}/classify", content=speech_clip.read_bytes(), headers=h)
    assert r.status_code == 400 and "at most 1 s" in r.json()["detail"]
    r = client.post(f"{API}/jobs", json={"kind": "classify"}, headers=h)
    assert wait_job(client, r.json()["job"]["id"])["result"]["classify"]["classified"] == 2


def test_tag_library_review_and_video_tags(client, speech_clip):
    from vidlens.tags import TagLibrary

    h = auth(client)
    r = client.post(f"{API}/tags", json={"name": "白色连衣裙", "status": "approved"}, headers=h)
    assert r.status_code == 201, r.text
    assert client.post(f"{API}/tags", json={"name": "   "}, headers=h).status_code in (400, 422)
    tags = TagLibrary(client.app.state.vidlens.lib)
    mined = tags.add("露营装备", status="candidate", source="miner", score=0.7)
    queue = client.get(f"{API}/tags/candidates").json()
    assert [c["name"] for c in queue] == ["露营装备"]
    assert client.post(f"{API}/tags/{mined['id']}/approve", headers=h).json()["status"] == "approved"
    assert client.get(f"{API}/tags/candidates").json() == []
    assert client.post(f"{API}/tags/999999/reject", headers=h).status_code == 404
    assert client.post(f"{API}/tags/{mined['id']}/approve").status_code == 401
    assert client.get(f"{API}/tags/stats").status_code == 200

    # The tag step of the analysis puts library tags found by the tagger on the video.
    client.post(f"{API}/tags", json={"name": "pineapple"}, headers=h)
    up = upload(client, speech_clip)
    assert wait_job(client, up["job"]["id"])["result"]["tag"] == {"tagged": 1}
    detail = client.get(f"{API}/videos/{up['video_id']}").json()
    assert detail["tags"] == [{"name": "pineapple", "kind": "atomic", "score": 0.9, "role": "core",
                               "channels": ["content_text"], "source": "tagger"}]
    r = client.post(f"{API}/tag", content=speech_clip.read_bytes(), headers=h)
    assert r.status_code == 200 and r.json()["tags"][0]["name"] == "pineapple"
