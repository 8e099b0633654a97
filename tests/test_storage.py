"""The metadata DB on SQLite and PostgreSQL: migrations match the models, old libraries are adopted,
idempotent writes, the database URL on the command line, and two ingest processes on one library."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, inspect, select

import vidlens
from vidlens.errors import VidlensError
from vidlens.store import MetadataStore
from vidlens.store.models import Meta, Video, VideoPath
from vidlens.store.schema import alembic_config, current_revision, head_revision, model_metadata

COLORS = ["red", "green", "blue", "white", "yellow", "cyan", "magenta", "orange", "purple", "gray"]


def _open(folder, database_url: str) -> vidlens.Library:
    """A library in ``folder`` on ``database_url`` (on SQLite: the default file inside the folder)."""
    return vidlens.open(folder, overrides={"database_url": database_url}
                        if database_url.startswith("postgresql") else None)


@pytest.fixture
def store(database_url):
    s = MetadataStore(database_url)
    yield s
    s.close()


def test_migrations_create_exactly_the_models(store):
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                model_metadata()) == []
        command.check(alembic_config(conn, with_models=True))  # what `alembic check` runs


def test_opening_again_and_concurrent_meta_rows_are_idempotent(store):
    again = MetadataStore(store.url)
    with again.session() as s:
        assert {m.key for m in s.scalars(select(Meta))} == {"schema_version", "created_at"}
    again.close()


def test_record_error_upserts_and_counts(store):
    store.record_error("ingest", "a.mp4", "first")
    store.record_error("ingest", "a.mp4", "second", video_id="v1")
    store.record_error("extract:asr", "a.mp4", "other stage")
    errors = {(e["stage"], e["item"]): e for e in store.errors()}
    assert errors["ingest", "a.mp4"]["attempts"] == 2 and errors["ingest", "a.mp4"]["message"] == "second"
    assert store.counts()["errors_by_stage"] == {"ingest": 1, "extract:asr": 1}


def test_64_bit_sizes_and_times(store):
    big = 5 * 2**31
    with store.session() as s:
        s.add(Video(id="a" * 20, size_bytes=big, duration=1.0, has_video=True, has_audio=False,
                    product_titles=[], product_categories=[], labels=["x"], extra={}))
        s.add(VideoPath(path_raw=b"/v/\xff.mp4", path="/v/\\xff.mp4", video_id="a" * 20, size_bytes=big,
                        mtime_ns=1_800_000_000 * 10**9))
        s.commit()
    video = store.get_video("aaaa")
    assert video["size_bytes"] == big and video["labels"] == ["x"] and video["paths"] == ["/v/\\xff.mp4"]
    assert store.counts()["with_video"] == 1 and store.counts()["with_audio"] == 0


def test_revision_0002_indexes_a_db_at_0001_and_keeps_its_rows(database_url):
    """A DB left at 0001 by the previous vidlens gets the two indexes on opening; down and up again work."""
    from sqlalchemy import create_engine

    from vidlens.store.models import Extraction

    command.upgrade(alembic_config(url=database_url), "0001")
    engine = create_engine(database_url)
    with engine.begin() as conn:
        assert "ix_extractions_updated_at" not in {ix["name"] for ix in inspect(conn).get_indexes("extractions")}
        conn.execute(Video.__table__.insert().values(
            id="c" * 20, size_bytes=10, duration=2.0, has_video=True, has_audio=True, product_titles=[],
            product_categories=[], labels=[], extra={}, rotation=0, variable_frame_rate=False,
            created_at=func.now(), updated_at=func.now()))
        conn.execute(Extraction.__table__.insert().values(
            video_id="c" * 20, feature="frames", key="k", status="ok", result={}, seconds=0.0,
            updated_at=func.now()))
    engine.dispose()

    store = MetadataStore(database_url)

    def indexes(conn) -> set[str]:
        return {ix["name"] for table in ("extractions", "tag_clicks") for ix in inspect(conn).get_indexes(table)}

    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision() == "0002"
        assert {"ix_extractions_updated_at", "ix_tag_clicks_tag_id"} <= indexes(conn)
        assert compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                model_metadata()) == []
    assert store.video_ids() == ["c" * 20]
    store.close()
    command.downgrade(alembic_config(url=database_url), "0001")
    command.upgrade(alembic_config(url=database_url), "head")
    engine = create_engine(database_url)
    with engine.connect() as conn:
        assert {"ix_extractions_updated_at", "ix_tag_clicks_tag_id"} <= indexes(conn)
    engine.dispose()


def test_library_made_before_migrations_is_adopted(tmp_path):
    """A SQLite library whose tables came from ``create_all`` (some of them only) keeps its rows."""
    from sqlalchemy import create_engine

    url = f"sqlite:///{tmp_path / 'old.db'}"
    metadata = model_metadata()
    old = [t for name, t in metadata.tables.items() if not name.startswith("service_")]
    engine = create_engine(url)
    metadata.create_all(engine, tables=old)
    with engine.begin() as conn:
        conn.execute(Meta.__table__.insert().values(key="schema_version", value="1"))
        conn.execute(Video.__table__.insert().values(
            id="b" * 20, size_bytes=10, duration=2.0, has_video=True, has_audio=True, product_titles=[],
            product_categories=[], labels=[], extra={}, rotation=0, variable_frame_rate=False))
    engine.dispose()

    store = MetadataStore(url)
    with store.engine.connect() as conn:
        assert current_revision(conn) == head_revision()
        assert inspect(conn).has_table("service_jobs")
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert store.video_ids() == ["b" * 20]
    store.close()


def test_cli_takes_a_database_url(postgres_url, tmp_path):
    from click.testing import CliRunner

    from vidlens.cli import cli

    runner, lib = CliRunner(), str(tmp_path / "lib")
    no_env = {"VIDLENS_DATABASE_URL": None}
    done = runner.invoke(cli, ["-L", lib, "--database-url", postgres_url, "init"], env=no_env)
    assert done.exit_code == 0, done.output
    assert not (tmp_path / "lib" / "library.db").exists()
    # The new folder records the (password-free) URL, so later commands find the same DB without it.
    assert postgres_url in (tmp_path / "lib" / "vidlens.toml").read_text()
    done = runner.invoke(cli, ["-L", lib, "status", "--json"], env=no_env)
    assert done.exit_code == 0, done.output
    status = json.loads(done.stdout)
    assert status["videos"] == 0 and status["database"].startswith("postgresql+psycopg://")
    done = runner.invoke(cli, ["-L", lib, "--database-url", "sqlite:////nowhere.db", "status"],
                         env={"VIDLENS_DATABASE_URL": postgres_url})
    assert done.exit_code == 2 and "name different databases" in done.output


def test_two_ingest_processes_on_one_library(database_url, clip_factory, tmp_path):
    """Both processes start on a new library and take the same folder, in the same order: 30 clips of 20
    contents and 3 bad files, which both record as failed."""
    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(30):
        k = i % 20  # files 20-29 repeat the content of 0-9 under other names
        src = clip_factory(duration=0.4, size=(64, 48), color=COLORS[k % 10], tone_hz=200 + 40 * (k // 10))
        shutil.copyfile(src, folder / f"c{i:02d}.mp4")
        if i % 10 == 5:
            (folder / f"c{i:02d}_bad.mp4").write_bytes(b"not a video" * i)
    lib_dir = tmp_path / "lib"
    env = {k: v for k, v in os.environ.items() if k != "VIDLENS_DATABASE_URL"}
    cmd = [sys.executable, "-m", "vidlens.cli", "-L", str(lib_dir)]
    if database_url.startswith("postgresql"):
        cmd += ["--database-url", database_url]
    cmd += ["ingest", "--json", str(folder)]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 1 and "Traceback" not in err, err  # 1: some items failed
    results = [json.loads(line) for out, _ in outs for line in out.splitlines()]
    assert len(results) == 66
    assert sum(r["status"] == "added" for r in results) == 20  # each content added by exactly one process
    assert sum(r["status"] == "failed" for r in results) == 6

    with _open(lib_dir, database_url) as lib, lib.store.session() as s:
        assert s.scalar(select(func.count()).select_from(Video)) == 20
        assert s.scalar(select(func.count()).select_from(VideoPath)) == 30
        assert s.scalar(select(func.count(func.distinct(VideoPath.path_raw)))) == 30
        assert [e["attempts"] for e in lib.errors()] == [2, 2, 2]  # one row per bad file, both failures counted



def test_nul_in_a_title_is_dropped_on_both_backends(database_url, clip_factory, tmp_path):
    shutil.copyfile(clip_factory(duration=0.5, size=(64, 48), color="blue"), tmp_path / "a.mp4")
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"path": "a.mp4", "title": "nul\x00 in title"}) + "\n")
    with _open(tmp_path / "lib", database_url) as lib:
        report = lib.ingest(manifest)
        assert report.counts["added"] == 1
        assert lib.get(report.results[0].video_id)["title"] == "nul in title"


def test_db_from_a_newer_vidlens_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'new.db'}"
    MetadataStore(url).close()
    with sqlite3.connect(tmp_path / "new.db") as con:
        con.execute("UPDATE alembic_version SET version_num = '9999'")
    with pytest.raises(VidlensError, match="newer vidlens"):
        MetadataStore(url)
