"""A throwaway PostgreSQL server for the storage tests, and the ``database_url`` backend fixture.

The server is Debian's ``postgresql`` package (``scripts/setup.sh`` installs it): a cluster made by
``initdb`` in a temporary folder, listening on a free loopback port and on a socket in that folder,
started once per test session and stopped at its end. Durability is switched off (``fsync=off``): the
tests need a real server, not a safe one. PostgreSQL refuses to run as root, so under root (as in CI)
``initdb`` and ``pg_ctl`` run as the ``postgres`` user the package creates (``nobody`` without it).

Tests that take ``database_url`` run once on SQLite and once on PostgreSQL, each with a fresh, empty
database. The PostgreSQL runs are skipped, with the reason, only where the server binaries or psycopg
are missing; a server that is there but does not start fails the tests.
"""

from __future__ import annotations

import glob
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

BIN_GLOB = "/usr/lib/postgresql/*/bin"
SUPERUSER = "vidlens"
SKIP_HINT = "install Debian's postgresql package (apt-get install -y postgresql; scripts/setup.sh does)"


def find_server_binaries() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` that holds ``initdb`` and ``pg_ctl``."""
    found = [Path(d) for d in glob.glob(BIN_GLOB) if os.access(Path(d) / "initdb", os.X_OK)
             and os.access(Path(d) / "pg_ctl", os.X_OK)]
    return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else 0, default=None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One cluster in a temporary folder; :meth:`create_database` hands out empty databases.

    Args:
        bindir: the folder with ``initdb`` and ``pg_ctl``.
    """

    def __init__(self, bindir: Path):
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="vidlens-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"
        self.port: int | None = None
        self._names = itertools.count()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres" if _user_exists("postgres") else "nobody"
            os.chown(self.root, pwd.getpwnam(user).pw_uid, -1)
            self._prefix = ["runuser", "-u", user, "--"]

    def _run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*self._prefix, *args], capture_output=True, text=True, timeout=120)

    def start(self) -> None:
        """``initdb`` then ``pg_ctl start`` on a free port (another is tried if that one is taken)."""
        done = self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
                         "-E", "UTF8", "--no-locale", "--no-sync")
        if done.returncode:
            raise RuntimeError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")
        for _ in range(3):
            port = _free_port()
            options = (f"-p {port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
            done = self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
                             "-t", "60", "-o", options, "start")
            if done.returncode == 0:
                self.port = port
                return
        log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
        raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")

    def url(self, database: str = "postgres") -> str:
        """The SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres",
                             autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        """A new empty database; returns its name."""
        name = f"test_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return name

    def drop_database(self, name: str) -> None:
        """Drop a database, closing what is still connected to it."""
        self._admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Stop the server at once and delete its folder."""
        if self.port is not None:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
            self.port = None
        shutil.rmtree(self.root, ignore_errors=True)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server (skipped where it cannot be had; see the module docstring)."""
    bindir = find_server_binaries()
    if bindir is None:
        pytest.skip(f"PostgreSQL server not found ({BIN_GLOB}/initdb): {SKIP_HINT}")
    if importlib.util.find_spec("psycopg") is None:
        pytest.skip("psycopg is not installed: pip install 'vidlens[postgres]'")
    server = PostgresServer(bindir)
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    name = postgres_server.create_database()
    yield postgres_server.url(name)
    # Each database holds a copy of the template (~7 MB): dropping them keeps the cluster small.
    postgres_server.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a fresh metadata DB, once per backend: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'metadata.db'}"
    return request.getfixturevalue("postgres_url")
