"""Load benchmarks of the HTTP service, on loopback only, bounded in requests and time.

Three runs:

``search``  A library of N synthetic videos (default 100k: titles, summaries, transcripts and on-screen
            text drawn from a Zipf-distributed Chinese + English vocabulary, written straight into the
            metadata DB), served by the real ``vidlens serve --workers W`` in a subprocess. C keep-alive
            connections (default 32) query ``GET /api/v1/search`` for S seconds (default 60), rotating
            through 2,000 distinct queries, after a 5 s warm-up. The load comes from ``wrk -t1 -cC
            --latency`` with a Lua script (default: it costs far less CPU than a Python client, so the
            server gets the cores) or from a Python asyncio client (``--client python``). Reports
            throughput, latency percentiles, errors, server and client CPU, and the server's memory
            (RSS and PSS summed over its processes) sampled every second.

``startup`` Time until every worker serves, first without the keyword index snapshot (built from the
            DB and written), then with it (mapped).

``uploads`` K distinct generated clips (default 20) uploaded concurrently, each twice (2K requests at
            once, so every video is also raced against its own duplicate), to a server in this process
            whose encoders count their calls. Waits for every analysis job, then checks each video was
            analysed exactly once (one ASR / audio / OCR call per video) and has all its features.

Usage::

    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_service.py search [--workers 2] [--cache 0]
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_service.py startup [--workers 2]
    flock /tmp/vidlens-bench.lock .venv/bin/python benchmarks/bench_service.py uploads [--clips 20] [--real]

Results are printed and written as JSON to ``benchmarks/out/service-<run>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import psutil

import vidlens

OUT = Path(__file__).resolve().parent / "out"

# ---------------------------------------------------------------------------------------------------
# synthetic library

_SYLLABLES = ["ka", "lo", "mi", "tor", "ven", "sa", "ri", "pu", "del", "an", "qua", "zen", "bo", "fi", "ne"]
_HANZI = list("的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产"
              "种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本"
              "去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或"
              "但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品"
              "式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先")


def vocabulary(seed: int = 7, n_en: int = 6000, n_zh: int = 6000) -> list[str]:
    """Pseudo-words: Latin ones from syllables, Chinese ones of two or three characters."""
    rng = random.Random(seed)
    words: set[str] = set()
    while len(words) < n_en:
        words.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    zh: set[str] = set()
    while len(zh) < n_zh:
        zh.add("".join(rng.choice(_HANZI) for _ in range(rng.randint(2, 3))))
    out = sorted(words) + sorted(zh)
    rng.shuffle(out)
    return out


class ZipfText:
    """Draws words with Zipf-like frequencies (rank^-1.05), so some words are common and most are rare."""

    def __init__(self, vocab: list[str], seed: int):
        self.vocab = vocab
        ranks = np.arange(1, len(vocab) + 1, dtype=np.float64)
        p = ranks ** -1.05
        self.p = p / p.sum()
        self.rng = np.random.default_rng(seed)

    def words(self, n: int) -> list[str]:
        return [self.vocab[i] for i in self.rng.choice(len(self.vocab), size=n, p=self.p)]

    def sentence(self, n: int) -> str:
        # Chinese words run together as in real text; Latin words are separated by spaces.
        out = []
        for w in self.words(n):
            if out and (w[0].isascii() or out[-1][-1].isascii()):
                out.append(" ")
            out.append(w)
        return "".join(out)


def build_library(folder: Path, n: int, seed: int = 1) -> None:
    """Write ``n`` synthetic videos with transcripts and OCR text straight into a new library's DB."""
    from vidlens.store.models import Extraction, Video, utcnow

    lib = vidlens.open(folder)
    text = ZipfText(vocabulary(), seed)
    rng = random.Random(seed)
    now = utcnow()
    batch = 5000
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        videos, extractions = [], []
        for i in range(start, min(n, start + batch)):
            vid = f"{i:08x}{uuid.UUID(int=rng.getrandbits(128)).hex[:12]}"
            duration = round(rng.uniform(5, 180), 2)
            videos.append({
                "id": vid, "title": text.sentence(rng.randint(3, 8)), "summary": text.sentence(rng.randint(0, 20)),
                "product_titles": [], "product_categories": [], "labels": [], "extra": {}, "size_bytes": 1_000_000,
                "container": "mp4", "duration": duration, "has_video": True, "has_audio": True, "width": 720,
                "height": 1280, "fps": 30.0, "rotation": 0, "variable_frame_rate": False,
                "created_at": now, "updated_at": now,
            })
            asr = text.sentence(rng.randint(10, 60))
            ocr = text.sentence(rng.randint(0, 6))
            lang = "zh" if rng.random() < 0.6 else "en"
            for feature, result in (
                ("asr", {"language": lang, "text": asr, "segments": [{"start": 0.0, "end": duration, "text": asr}]}),
                ("ocr", {"lines": [{"text": ocr, "start": 0.0, "end": 3.0, "score": 0.9}], "text": ocr}),
                ("cover", {"thumbnail": f"{vid}.jpg"}),
            ):
                extractions.append({"video_id": vid, "feature": feature, "key": "synthetic@1", "status": "ok",
                                    "message": None, "result": result, "seconds": 0.0, "updated_at": now})
        with lib.store.session() as s:
            s.execute(Video.__table__.insert(), videos)
            s.execute(Extraction.__table__.insert(), extractions)
            s.commit()
    lib.close()
    print(f"built a library of {n} synthetic videos in {time.perf_counter() - t0:.1f} s at {folder}", flush=True)


def queries(n: int = 2000, seed: int = 3) -> list[str]:
    """Search strings of one to three words, drawn like the library's text (common words more often)."""
    text = ZipfText(vocabulary(), seed)
    rng = random.Random(seed)
    return [" ".join(text.words(rng.choice((1, 1, 2, 2, 3)))) for _ in range(n)]


# ---------------------------------------------------------------------------------------------------
# the server under test: ``vidlens serve`` in a subprocess, its processes, CPU and memory

class ServedLibrary:
    """``vidlens serve`` on a free loopback port, in a subprocess (``workers`` processes).

    Ready once every worker logged that its start-up is complete (its keyword index is loaded); the
    start-up log lines of the index are kept.
    """

    def __init__(self, lib_dir: Path, workers: int = 1, cache: int = 4096):
        self.port = _free_port()
        self.workers = workers
        env = {**os.environ, "VIDLENS_LIBRARY": str(lib_dir)}
        cmd = [sys.executable, "-m", "vidlens", "serve", "--port", str(self.port), "--no-access-log",
               "--log-level", "info", "--no-web", "--search-cache-size", str(cache), "--workers", str(workers)]
        self.lines: list[tuple[float, str]] = []
        self._ready = threading.Semaphore(0)
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        threading.Thread(target=self._read_log, daemon=True).start()

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.perf_counter() - self.t0, line.rstrip()))
            if "Application startup complete" in line:
                self._ready.release()

    def wait_ready(self, timeout: float = 900) -> float:
        """Seconds from start until every worker serves."""
        deadline = time.perf_counter() + timeout
        for _ in range(self.workers):
            while not self._ready.acquire(timeout=1):
                if self.proc.poll() is not None:
                    raise RuntimeError("server exited:\n" + "\n".join(x for _, x in self.lines[-30:]))
                if time.perf_counter() > deadline:
                    raise RuntimeError("server did not become ready")
        import httpx

        httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=30).raise_for_status()
        return time.perf_counter() - self.t0

    def index_log(self) -> list[str]:
        """The keyword index's start-up lines."""
        return [f"{t:.1f} s: {x}" for t, x in self.lines if "keyword index" in x or "search index" in x]

    def processes(self) -> list[psutil.Process]:
        """The server's processes (the uvicorn supervisor and its workers)."""
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        """User + system CPU of all its processes so far."""
        total = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def memory_mb(self) -> tuple[float, float]:
        """(RSS summed over processes, PSS summed over processes): PSS counts a page shared by N processes
        (the mapped snapshot) as 1/N in each, so its sum is the real footprint."""
        rss = pss = 0.0
        for p in self.processes():
            with contextlib.suppress(psutil.Error):
                m = p.memory_full_info()
                rss += m.rss
                pss += getattr(m, "pss", m.rss)
        return rss / 2**20, pss / 2**20

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class MemorySampler:
    """Samples a server's memory once a second in a thread while the load runs."""

    def __init__(self, server: ServedLibrary):
        self.server = server
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.server.memory_mb())

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def summary(self) -> dict[str, float]:
        half = len(self.samples) // 2 or 1
        first, second = self.samples[:half], self.samples[half:] or self.samples[:half]
        return {
            "rss_first_half_mean": round(statistics.mean(r for r, _ in first), 1),
            "rss_second_half_mean": round(statistics.mean(r for r, _ in second), 1),
            "pss_first_half_mean": round(statistics.mean(p for _, p in first), 1),
            "pss_second_half_mean": round(statistics.mean(p for _, p in second), 1),
            "rss_max": round(max(r for r, _ in self.samples), 1),
        }


# ---------------------------------------------------------------------------------------------------
# load generators: wrk (default) and a Python asyncio client (fallback)

_WRK_SCRIPT = """\
-- Rotates through the benchmark's queries; done() prints exact figures as one JSON line.
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i], {["Accept"] = "application/json"})
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK_JSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},' ..
    '"latency_us":{"p50":%%d,"p90":%%d,"p99":%%d,"p99.9":%%d,"mean":%%.1f,"max":%%d}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max))
end
"""
_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def wrk_script(paths: list[str], folder: Path) -> Path:
    """A wrk Lua script that sends ``paths`` in turn (they are URL-quoted, so plain Lua strings)."""
    path = folder / "service-search-wrk.lua"
    path.write_text(_WRK_SCRIPT % ",\n  ".join(f'"{p}"' for p in paths))
    return path


def run_wrk(port: int, script: Path, clients: int, seconds: float, threads: int = 1
            ) -> tuple[dict[str, Any], float, str]:
    """Run ``wrk --latency``; returns (figures, wrk's own CPU seconds, its text output)."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk; scripts/setup.sh does it); "
                         "or use --client python")
    cmd = ["wrk", f"-t{threads}", f"-c{clients}", f"-d{int(seconds)}s", "--latency", "--timeout", "10s",
           "-s", str(script), f"http://127.0.0.1:{port}"]
    proc = psutil.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    cpu = 0.0
    out = ""
    try:
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                cpu = t.user + t.system
            time.sleep(0.5)
    finally:
        out = proc.stdout.read() if proc.stdout else ""
    exact = json.loads(next(line for line in out.splitlines() if line.startswith("WRK_JSON "))[9:])
    # The --latency distribution, as wrk prints it ("     99%   12.34ms").
    distribution = {}
    for line in out.split("Latency Distribution", 1)[-1].splitlines()[1:5]:
        pct, value = line.split()
        number, unit = re.fullmatch(r"([0-9.]+)([a-z]+)", value).groups()  # type: ignore[union-attr]
        distribution[f"p{pct.rstrip('%')}"] = round(float(number) * _UNITS[unit], 2)
    errors = {k: v for k, v in exact["errors"].items() if v}
    wall = exact["duration_us"] / 1e6
    figures = {
        "seconds": round(wall, 2),
        "requests": exact["requests"],
        "throughput_rps": round(exact["requests"] / wall, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in exact["latency_us"].items()},
        "latency_ms_wrk_text": distribution,
        "errors": errors,
    }
    return figures, cpu, out


async def _client(host: str, port: int, paths: list[str], until: float, latencies: list[float],
                  errors: Counter, max_requests: int) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random(id(latencies) ^ id(paths))
    sent = 0
    try:
        while time.perf_counter() < until and sent < max_requests:
            path = rng.choice(paths)
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            sent += 1
            if status != 200:
                errors[f"status {status}"] += 1
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        errors[type(exc).__name__] += 1
    finally:
        writer.close()


async def _load(host: str, port: int, paths: list[str], clients: int, seconds: float,
                max_requests: int) -> tuple[list[float], Counter, float]:
    latencies: list[float] = []
    errors: Counter = Counter()
    t0 = time.perf_counter()
    until = t0 + seconds
    per_client = max(1, max_requests // clients)
    await asyncio.gather(*(_client(host, port, paths, until, latencies, errors, per_client)
                           for _ in range(clients)))
    return latencies, errors, time.perf_counter() - t0


def run_python_client(port: int, paths: list[str], clients: int, seconds: float, max_requests: int
                      ) -> tuple[dict[str, Any], float]:
    """The asyncio load generator (in this process); returns (figures, its CPU seconds)."""
    me = psutil.Process()
    before = me.cpu_times()
    latencies, errors, wall = asyncio.run(_load("127.0.0.1", port, paths, clients, seconds, max_requests))
    after = me.cpu_times()
    figures = {"seconds": round(wall, 2), "requests": len(latencies),
               "throughput_rps": round(len(latencies) / wall, 1), "latency_ms": _percentiles(latencies),
               "errors": dict(errors)}
    return figures, (after.user - before.user) + (after.system - before.system)


def _percentiles(latencies: list[float]) -> dict[str, float]:
    a = np.asarray(latencies) * 1000
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in (50, 90, 99, 99.9)} | {
        "mean": round(float(a.mean()), 2), "max": round(float(a.max()), 2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _library(args: argparse.Namespace) -> Path:
    lib_dir = Path(args.lib or OUT / f"service_lib_{args.videos}")
    if not (lib_dir / "library.db").exists():
        build_library(lib_dir, args.videos)
    return lib_dir


def run_search(args: argparse.Namespace) -> dict[str, Any]:
    lib_dir = _library(args)
    load_average = os.getloadavg()
    server = ServedLibrary(lib_dir, workers=args.workers, cache=args.cache)
    try:
        startup = server.wait_ready()
        print(f"server ready in {startup:.1f} s; " + "; ".join(server.index_log()), flush=True)
        paths = [f"/api/v1/search?q={_quote(q)}&limit=20" for q in queries(args.queries)]
        script = wrk_script(paths, OUT)
        # Warm-up (also fills the answer caches), then the measured run with memory sampled each second.
        if args.client == "wrk":
            run_wrk(server.port, script, args.clients, 5)
        else:
            run_python_client(server.port, paths, args.clients, 5, 10**9)
        cpu_before = server.cpu_seconds()
        with MemorySampler(server) as memory:
            if args.client == "wrk":
                figures, client_cpu, text = run_wrk(server.port, script, args.clients, args.seconds)
                print(text, flush=True)
            else:
                figures, client_cpu = run_python_client(server.port, paths, args.clients, args.seconds,
                                                        args.max_requests)
        server_cpu = server.cpu_seconds() - cpu_before
    finally:
        server.stop()
    return {
        "run": "search",
        "client": args.client,
        "videos": args.videos,
        "clients": args.clients,
        "distinct_queries": args.queries,
        "server_workers": args.workers,
        "server_search_cache": args.cache,
        **figures,
        "server_startup_s": round(startup, 1),
        "server_index_log": server.index_log(),
        "server_cpu_s": round(server_cpu, 1),
        "server_cpu_ms_per_request": round(1000 * server_cpu / max(figures["requests"], 1), 3),
        "client_cpu_s": round(client_cpu, 1),
        "server_memory_mb": memory.summary(),
        "load_average_at_start": [round(x, 2) for x in load_average],
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }


def run_startup(args: argparse.Namespace) -> dict[str, Any]:
    """Start-up time without a snapshot (build from the DB and write it), then with it (map it)."""
    lib_dir = _library(args)
    out: dict[str, Any] = {"run": "startup", "videos": args.videos, "server_workers": args.workers,
                           "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    for case in ("rebuild", "snapshot"):
        if case == "rebuild":
            shutil.rmtree(lib_dir / "index" / "textsearch", ignore_errors=True)
        server = ServedLibrary(lib_dir, workers=args.workers, cache=0)
        try:
            ready = server.wait_ready()
            rss, pss = server.memory_mb()
        finally:
            server.stop()
        out[case] = {"ready_s": round(ready, 1), "index_log": server.index_log(),
                     "rss_mb": round(rss, 1), "pss_mb": round(pss, 1)}
        print(case, json.dumps(out[case], ensure_ascii=False), flush=True)
    return out


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")

# ---------------------------------------------------------------------------------------------------
# concurrent uploads

class CountingBank:
    """Wraps an encoder bank and counts calls per role (thread-safe)."""

    def __init__(self, inner: Any):
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()

    def key_of(self, feature: str) -> str:
        return self.inner.key_of(feature)

    def __getattr__(self, role: str) -> Any:
        fn = getattr(self.inner, role)

        def counted(*a: Any, **kw: Any) -> Any:
            with self._lock:
                self.calls[role] += 1
            return fn(*a, **kw)

        return counted


def run_uploads(args: argparse.Namespace) -> dict[str, Any]:
    import shutil

    import httpx

    from vidlens.service import ServiceSettings, create_app
    from vidlens.service.testing import StandInClassifier, StandInEncoders, StandInTagger, running_server
    from vidlens.testing.clips import make_clip

    corpus = OUT / "service_upload_clips"
    corpus.mkdir(parents=True, exist_ok=True)
    colors = ["red", "green", "blue", "white", "yellow", "cyan", "magenta", "orange", "purple", "gray"]
    words = ["apple", "river", "garden", "rocket", "violin", "candle", "forest", "harbour", "pepper", "silver"]

    def clip(i: int) -> Path:
        path = corpus / f"upload{i:03d}.mp4"
        if not path.exists():
            make_clip(path, duration=3.0, size=(320, 240), color=colors[i % 10], speech=f"{words[i % 10]} number {i}",
                      text=f"CLIP {i}", lang="en")
        return path

    with ThreadPoolExecutor(2) as pool:
        clips = list(pool.map(clip, range(args.clips)))
    lib_dir = OUT / "service_upload_lib"
    shutil.rmtree(lib_dir, ignore_errors=True)
    if args.real:
        from vidlens.features.encoding import EncoderBank

        bank = CountingBank(EncoderBank(vidlens.open(lib_dir).config))
    else:
        bank = CountingBank(StandInEncoders(transcript="stand-in transcript"))
    # Stand-in encoders make stand-in vectors, which the real zero-shot classifier and tagger cannot
    # read: the stand-in run analyses with the stand-in classifier and tagger too.
    engines = {} if args.real else {"classifier": StandInClassifier(), "tagger": StandInTagger(words)}
    app = create_app(lib_dir, ServiceSettings(), encoders=bank, engines=engines)
    token = app.state.vidlens.token
    headers = {"Authorization": f"Bearer {token}"}
    requests_ = [c for c in clips for _ in range(2)]
    random.Random(5).shuffle(requests_)
    with running_server(app) as url:
        barrier = threading.Barrier(len(requests_))

        def send(path: Path) -> tuple[float, dict[str, Any]]:
            body = path.read_bytes()
            with httpx.Client(timeout=120) as http:
                barrier.wait()
                t0 = time.perf_counter()
                r = http.post(f"{url}/api/v1/videos", params={"title": path.stem}, content=body, headers=headers)
                return time.perf_counter() - t0, {"status": r.status_code, **r.json()}

        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(requests_)) as pool:
            answers = list(pool.map(send, requests_))
        upload_wall = time.perf_counter() - t0
        jobs = {a["job"]["id"] for _, a in answers if a.get("job")}
        with httpx.Client(timeout=30) as http:
            while True:
                states = [http.get(f"{url}/api/v1/jobs/{j}").json() for j in jobs]
                if all(s["status"] in ("done", "failed", "cancelled") for s in states):
                    break
                time.sleep(0.25)
            all_done = time.perf_counter() - t0
            ids = sorted({a["video_id"] for _, a in answers})
            details = [http.get(f"{url}/api/v1/videos/{vid}").json() for vid in ids]
    incomplete = [d["id"] for d in details if any(f["status"] != "ok" for name, f in d["features"].items()
                                                   if name in ("frames", "cover", "audio", "asr", "ocr"))]
    per_video = {role: bank.calls[role] / max(len(ids), 1) for role in ("audio", "asr", "ocr")}
    result = {
        "run": "uploads",
        "encoders": "real" if args.real else "stand-in",
        "clips": args.clips,
        "requests": len(requests_),
        "statuses": dict(Counter(a["status"] for _, a in answers)),
        "videos": len(ids),
        "jobs": len(jobs),
        "job_states": dict(Counter(s["status"] for s in states)),
        "encoder_calls": dict(bank.calls),
        "calls_per_video": per_video,
        "analysed_exactly_once": len(ids) == args.clips and all(v == 1 for v in per_video.values()) and not incomplete,
        "incomplete_videos": incomplete,
        "upload_latency_ms": _percentiles([t for t, _ in answers]),
        "uploads_wall_s": round(upload_wall, 2),
        "all_analysed_s": round(all_done, 2),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="run", required=True)
    s = sub.add_parser("search", help="search throughput and latency on a large synthetic library")
    s.add_argument("--videos", type=int, default=100_000)
    s.add_argument("--clients", type=int, default=32)
    s.add_argument("--seconds", type=float, default=60.0)
    s.add_argument("--max-requests", type=int, default=2_000_000, help="hard cap on requests sent")
    s.add_argument("--lib", default=None, help="library folder (built when missing)")
    s.add_argument("--cache", type=int, default=4096, help="server's search cache size (0: every query computed)")
    s.add_argument("--queries", type=int, default=2000, help="distinct queries the clients draw from")
    s.add_argument("--workers", type=int, default=1, help="server worker processes")
    s.add_argument("--client", choices=("wrk", "python"), default="wrk", help="load generator")
    st = sub.add_parser("startup", help="start-up time with and without the keyword index snapshot")
    st.add_argument("--videos", type=int, default=100_000)
    st.add_argument("--lib", default=None, help="library folder (built when missing)")
    st.add_argument("--workers", type=int, default=1, help="server worker processes")
    u = sub.add_parser("uploads", help="concurrent uploads, each analysed exactly once")
    u.add_argument("--clips", type=int, default=20)
    u.add_argument("--real", action="store_true", help="use the real pretrained encoders (slow)")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    result = {"search": run_search, "startup": run_startup, "uploads": run_uploads}[args.run](args)
    if args.run == "search":
        tag = f"-w{args.workers}-cache{args.cache}" + ("-python" if args.client == "python" else "")
    elif args.run == "startup":
        tag = f"-w{args.workers}"
    else:
        tag = "-real" if args.real else ""
    out = OUT / f"service-{args.run}{tag}.json"
    out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
