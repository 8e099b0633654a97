"""Several server processes on one library (``vidlens serve --workers N``): background jobs run once, in
one process at a time, wherever a request landed."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the service needs: pip install 'vidlens[service]'")
pytest.importorskip("uvicorn", reason="the service needs: pip install 'vidlens[service]'")
import httpx
from fastapi.testclient import TestClient

import vidlens
from vidlens.service import ServiceSettings, create_app
from vidlens.service.app import WORKER_SPEC_ENV, worker_spec
from vidlens.service.jobs import JobHandler, JobQueue, JobRunner
from vidlens.service.security import TOKEN_FILE, load_or_create_token
from vidlens.service.testing import StandInClassifier, StandInEncoders, StandInTagger

API = "/api/v1"
SPOKEN = "pineapple harbour"
CALLS_ENV = "_VIDLENS_TEST_ENCODER_CALLS"


class LoggedEncoders(StandInEncoders):
    """Stand-in encoders that also append each call (with the process id) to the file ``CALLS_ENV`` names."""

    def _count(self, role: str) -> None:
        super()._count(role)
        with open(os.environ[CALLS_ENV], "a") as f:
            f.write(f"{os.getpid()} {role}\n")


def app():
    """The uvicorn factory of one worker process: the library of ``WORKER_SPEC_ENV`` with stand-in engines."""
    spec = json.loads(os.environ[WORKER_SPEC_ENV])
    lib = vidlens.open(spec["library"])
    return create_app(lib, ServiceSettings.model_validate(spec["settings"]), encoders=LoggedEncoders(transcript=SPOKEN),
                      engines={"classifier": StandInClassifier(), "tagger": StandInTagger(["pineapple"])},
                      close_library=True)


def test_two_runners_on_one_db_never_run_the_same_job(tmp_path):
    stores = [vidlens.open(tmp_path / "lib").store for _ in range(2)]  # one engine each, like two processes
    ran: list[tuple[str, str]] = []
    lock = threading.Lock()

    def work(owner: str):
        def run(_ctx, jobs):
            time.sleep(0.005)
            with lock:
                ran.extend((j.id, owner) for j in jobs)
            return {j.id: {} for j in jobs}
        return run

    queue = JobQueue(stores[0])
    ids = [queue.submit("count", {"n": i})[0]["id"] for i in range(40)]
    runners = [JobRunner(JobQueue(store), {"count": JobHandler(work(f"r{i}"))}, workers=2)
               for i, store in enumerate(stores)]
    for runner in runners:
        runner.start()
    deadline = time.monotonic() + 60
    while queue.counts()["done"] < len(ids) and time.monotonic() < deadline:
        time.sleep(0.05)
    for runner in runners:
        runner.stop()
    assert queue.counts()["done"] == len(ids)
    assert sorted(job for job, _owner in ran) == sorted(ids)  # each exactly once
    assert all(queue.get(i)["attempts"] == 1 for i in ids)


def test_one_app_per_library_runs_jobs_and_another_takes_over(tmp_path, clip_factory):
    clips = [clip_factory(duration=1.0, size=(64, 48), color=c, tone_hz=300 + 100 * i)
             for i, c in enumerate(("red", "blue"))]
    settings = ServiceSettings(job_stale_after_s=2.0, search_refresh_s=0.3, web=False)

    def make():
        return TestClient(create_app(tmp_path / "lib", settings, encoders=StandInEncoders(transcript=SPOKEN),
                                     engines={"classifier": StandInClassifier(), "tagger": StandInTagger([])}))

    def upload_and_wait(client: TestClient, clip: Path) -> dict:
        headers = {"Authorization": f"Bearer {client.app.state.vidlens.token}"}
        job = client.post(f"{API}/videos", content=clip.read_bytes(), headers=headers).json()["job"]
        deadline = time.monotonic() + 60
        while job["status"] not in ("done", "failed") and time.monotonic() < deadline:
            time.sleep(0.05)
            job = client.get(f"{API}/jobs/{job['id']}").json()
        return job

    first, second = make(), make()
    with first, second:
        runs = [c.app.state.vidlens.runner for c in (first, second)]
        assert bool(runs[0]._threads) and not runs[1]._threads  # the first holds the job-runner lock
        assert upload_and_wait(second, clips[0])["status"] == "done"  # queued by one, run by the other
        assert runs[0].ctx.queue is first.app.state.vidlens.queue
        first.__exit__(None, None, None)
        deadline = time.monotonic() + 10
        while not runs[1]._threads and time.monotonic() < deadline:
            time.sleep(0.1)
        assert runs[1]._threads, "the second app did not take the jobs over"
        assert upload_and_wait(second, clips[1])["status"] == "done"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_worker_processes_analyse_each_upload_once(tmp_path, clip_factory):
    clips = [clip_factory(duration=1.0, size=(64, 48), color=c, tone_hz=250 + 50 * i)
             for i, c in enumerate(("red", "green", "blue"))]
    lib = vidlens.open(tmp_path / "lib")
    token, _created = load_or_create_token(lib.root / TOKEN_FILE)
    settings = ServiceSettings(job_stale_after_s=5.0, search_refresh_s=0.3, web=False)
    calls = tmp_path / "calls.log"
    env = {**os.environ, WORKER_SPEC_ENV: worker_spec(lib, settings), CALLS_ENV: str(calls),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    lib.close()
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "--factory", "test_service_workers:app", "--workers", "2",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log"]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                httpx.get(f"{url}/healthz", timeout=5).raise_for_status()
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the workers did not start"
                time.sleep(0.2)
        # Every clip uploaded twice at once, on separate connections (so both processes take some).
        barrier = threading.Barrier(2 * len(clips))
        answers: list[dict] = []

        def send(clip: Path) -> None:
            with httpx.Client(timeout=60) as http:
                barrier.wait()
                r = http.post(f"{url}{API}/videos", content=clip.read_bytes(),
                              headers={"Authorization": f"Bearer {token}"})
                answers.append({**r.json(), "http": r.status_code})

        threads = [threading.Thread(target=send, args=(clip,)) for clip in clips for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(a["http"] for a in answers) == [200] * 3 + [201] * 3, answers
        jobs = {a["job"]["id"] for a in answers}
        assert len(jobs) == len(clips)  # the duplicate upload got the same job back
        with httpx.Client(base_url=url, timeout=10) as http:
            deadline = time.monotonic() + 90
            while True:
                states = [http.get(f"{API}/jobs/{j}").json() for j in jobs]
                if all(s["status"] in ("done", "failed") for s in states):
                    break
                assert time.monotonic() < deadline, states
                time.sleep(0.2)
            # (A duplicate arriving while its job runs asks for one more pass, which finds nothing to do.)
            assert [s["status"] for s in states] == ["done"] * len(jobs), states
            # Each role once per video, all in one process (the holder of the job-runner lock).
            lines = [line.split() for line in calls.read_text().splitlines()]
            roles = Counter(role for _pid, role in lines)
            assert roles["audio"] == roles["asr"] == roles["ocr"] == len(clips), roles
            assert len({pid for pid, _role in lines}) == 1
            # Both processes' keyword indexes see the analysed videos (refreshed from the DB).
            deadline = time.monotonic() + 20
            while True:
                totals = []
                for _ in range(8):
                    with httpx.Client(base_url=url, timeout=10) as fresh:  # a new connection each time
                        totals.append(fresh.get(f"{API}/search", params={"q": "pineapple"}).json()["total"])
                if totals == [len(clips)] * 8:
                    break
                assert time.monotonic() < deadline, totals
                time.sleep(0.3)
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
