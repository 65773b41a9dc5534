"""Real PostgreSQL servers for the failover harness: a primary and a synchronous standby, started
by the test itself from the Debian binaries, as the ``postgres`` user, in a temporary directory,
on free ports (never the server on 5432).

A node is one data directory on one port. The primary is killed the way a machine dies (SIGKILL to
the postmaster and every process it started); the standby is promoted (``pg_ctl promote``) and told
to stop waiting for a synchronous standby it no longer has (``ALTER SYSTEM`` + reload); a new
standby is rebuilt on the dead node's port from the new primary (``pg_basebackup -R``), so the
gateways' multi-host URL never changes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg

PG_USER = "postgres"
DATABASE = "yrdgw"
SYNC_NAMES = "*"
"""The primary waits for any one standby to have flushed each commit (there is only one)."""


class ClusterUnavailable(Exception):
    """PostgreSQL's binaries, or a user to run them as, are not on this machine."""


def pg_bindir() -> Path:
    """The newest installed Debian PostgreSQL's bin directory (``YRDGW_PG_BINDIR`` overrides)."""
    if override := os.environ.get("YRDGW_PG_BINDIR"):
        return Path(override)
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise ClusterUnavailable("no PostgreSQL binaries under /usr/lib/postgresql/*/bin")
    return found[-1].parent


def cluster_problem() -> str | None:
    """None when a cluster can be started here, else why not."""
    try:
        bindir = pg_bindir()
    except ClusterUnavailable as exc:
        return str(exc)
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (bindir / tool).exists():
            return f"{bindir / tool} is missing"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(PG_USER)
        except KeyError:
            return f"running as root and there is no {PG_USER!r} user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    if port == 5432:  # never the machine's own server
        return free_port()
    return port


@dataclass
class Node:
    """One PostgreSQL server: its data directory and port."""

    name: str
    datadir: Path
    port: int
    sockets: Path

    def conninfo(self, dbname: str = DATABASE) -> str:
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname={dbname} connect_timeout=3"

    def postmaster_pid(self) -> int | None:
        with contextlib.suppress(OSError, ValueError, IndexError):
            return int((self.datadir / "postmaster.pid").read_text().splitlines()[0])
        return None


class Cluster:
    """The servers of one run, under one temporary directory owned by ``postgres``."""

    def __init__(self, root: Path | None = None) -> None:
        problem = cluster_problem()
        if problem is not None:
            raise ClusterUnavailable(problem)
        self.bindir = pg_bindir()
        # Not under pytest's tmp_path: the postgres user must be able to reach it (mode 0700 dirs).
        self.root = Path(tempfile.mkdtemp(prefix="yrdgw-failover-pg-", dir=root))
        self._chown(self.root)
        self.nodes: list[Node] = []
        self.primary: Node | None = None
        self.standby: Node | None = None
        self._generation = 0
        self._standby_port: int | None = None
        self.log = self.root / "commands.log"

    # -- running things as postgres ---------------------------------------------------------------

    def _as_postgres(self, argv: Sequence[str]) -> list[str]:
        return ["runuser", "-u", PG_USER, "--", *argv] if os.geteuid() == 0 else list(argv)

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(PG_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        path.chmod(0o700)

    def run(self, tool: str, *args: str, timeout: float = 60) -> str:
        """Run one PostgreSQL tool as postgres; its output (raises with it on failure)."""
        argv = self._as_postgres([str(self.bindir / tool), *args])
        began = time.monotonic()
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            check=False,
        )
        with self.log.open("a") as log:
            took = time.monotonic() - began
            log.write(f"$ {' '.join(argv)}  # {took:.2f} s\n{done.stdout}{done.stderr}\n")
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def _new_node(self, name: str, port: int) -> Node:
        self._generation += 1
        datadir = self.root / f"{name}-{self._generation}"
        # A socket directory of its own: a killed server leaves its lock file behind.
        sockets = self.root / f"sockets-{self._generation}"
        sockets.mkdir()
        self._chown(sockets)
        return Node(name, datadir, port, sockets)

    def _start(self, node: Node) -> None:
        # Port and socket directory on the command line: a base backup copies the primary's
        # configuration files, and these two are what differ between the nodes.
        self.run(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            "60",
            "-D",
            str(node.datadir),
            "-l",
            str(self.root / f"{node.datadir.name}.log"),
            "-o",
            f"-p {node.port} -k {node.sockets}",
        )

    # -- the cluster's life -----------------------------------------------------------------------

    def start(self, prepare: Callable[[str], None] | None = None) -> None:
        """A fresh primary (database ``yrdgw``) and a synchronous standby streaming from it;
        ``prepare(url)`` runs in between (a schema migrated before there is a standby to wait
        for)."""
        primary = self._new_node("a", free_port())
        # --no-sync here and for base backups: what this harness kills is processes, not the
        # machine, and an fsync of every file of a fresh copy costs seconds on a busy disk.
        # Commits are still flushed (fsync = on), on the primary and, synchronously, the standby.
        self.run(
            "initdb",
            "-D",
            str(primary.datadir),
            "-U",
            PG_USER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        conf = primary.datadir / "postgresql.conf"
        with conf.open("a") as f:
            f.write(
                "\n# yrdgw failover harness\n"
                "listen_addresses = '127.0.0.1'\n"
                "wal_level = replica\n"
                "max_wal_senders = 5\n"
                "hot_standby = on\n"
                "synchronous_commit = on\n"
                f"synchronous_standby_names = '{SYNC_NAMES}'\n"
                "wal_keep_size = '256MB'\n"
                "max_connections = 100\n"
                "shared_buffers = '32MB'\n"
                "fsync = on\n"
                "recovery_init_sync_method = syncfs\n"
                "logging_collector = off\n"
            )
        with (primary.datadir / "pg_hba.conf").open("a") as f:
            f.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")
        # No standby yet: commits must not wait for one while the database is created.
        self._sql(primary, "ALTER SYSTEM SET synchronous_standby_names = ''", start_first=True)
        self.nodes.append(primary)
        self.primary = primary
        with psycopg.connect(primary.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")
        if prepare is not None:
            prepare(self.url())
        self.attach_standby(self.hosts()[1][1])

    def _sql(self, node: Node, statement: str, *, start_first: bool = False) -> None:
        if start_first:
            self._start(node)
        with psycopg.connect(node.conninfo("postgres"), autocommit=True) as conn:
            conn.execute(statement)
            conn.execute("SELECT pg_reload_conf()")

    def attach_standby(self, port: int) -> Node:
        """Build a standby on ``port`` from the primary (``pg_basebackup -R``), start it, and make
        the primary wait for it at every commit once it streams."""
        assert self.primary is not None
        node = self._new_node("b" if self.primary.name == "a" else "a", port)
        self.run(
            "pg_basebackup",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.primary.port),
            "-U",
            PG_USER,
            "-D",
            str(node.datadir),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
            "--no-sync",
            timeout=120,
        )
        self._start(node)
        self.nodes.append(node)
        self.standby = node
        self._sql(self.primary, f"ALTER SYSTEM SET synchronous_standby_names = '{SYNC_NAMES}'")
        self.wait_synchronous()
        return node

    def wait_synchronous(self, timeout: float = 60) -> None:
        """Until the primary reports a standby in ``sync`` state."""
        assert self.primary is not None
        give_up = time.monotonic() + timeout
        while time.monotonic() < give_up:
            with psycopg.connect(self.primary.conninfo("postgres"), autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync' "
                    "AND state = 'streaming'"
                ).fetchone()
                if row is not None and row[0] >= 1:
                    return
            time.sleep(0.1)
        raise RuntimeError("the standby did not become synchronous")

    def lag_standby(self) -> None:
        """Sabotage, for the harness's negative control: replication made asynchronous and the
        standby stopped, so commits from now on are acknowledged on the primary alone
        (``catch_up_offline`` starts it again, cut off from the primary, before its promotion)."""
        assert self.primary is not None and self.standby is not None
        self._sql(self.primary, "ALTER SYSTEM SET synchronous_standby_names = ''")
        self.run("pg_ctl", "stop", "-m", "fast", "-w", "-D", str(self.standby.datadir))

    def catch_up_offline(self) -> None:
        """Start the stopped standby (the primary is gone: it has only what it had)."""
        assert self.standby is not None
        self._start(self.standby)

    def kill_primary(self) -> Node:
        """SIGKILL the primary's postmaster and every process it started, as a machine dies."""
        node = self.primary
        assert node is not None
        pid = node.postmaster_pid()
        assert pid is not None, "the primary is not running"
        children = _children(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        for child in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        give_up = time.monotonic() + 10
        while any(_alive(p) for p in (pid, *children)) and time.monotonic() < give_up:
            time.sleep(0.01)
        self.primary = None
        return node

    def promote(self) -> Node:
        """Promote the standby, then clear ``synchronous_standby_names`` on it (it has no
        standby of its own: every commit would wait for ever)."""
        node = self.standby
        assert node is not None
        self.run("pg_ctl", "promote", "-w", "-t", "60", "-D", str(node.datadir))
        self._sql(node, "ALTER SYSTEM SET synchronous_standby_names = ''")
        self.primary = node
        self.standby = None
        return node

    def rebuild_standby(self, dead: Node) -> Node:
        """A new standby on the dead node's port (its data directory is thrown away)."""
        shutil.rmtree(dead.datadir, ignore_errors=True)
        return self.attach_standby(dead.port)

    def hosts(self) -> list[tuple[str, int]]:
        """The two ports the gateways' URL names: the first primary's, then the first standby's
        (drawn now if it is not attached yet)."""
        ports: list[int] = []
        for n in self.nodes:
            if n.port not in ports:
                ports.append(n.port)
        if len(ports) < 2:
            self._standby_port = self._standby_port or free_port()
            ports.append(self._standby_port)
        return [("127.0.0.1", p) for p in ports]

    def url(self, options: str = "") -> str:
        """The multi-host SQLAlchemy URL: every node, read-write sessions only."""
        hosts = "&".join(f"host={h}:{p}" for h, p in self.hosts())
        return (
            f"postgresql+psycopg://{PG_USER}@/{DATABASE}?{hosts}"
            f"&target_session_attrs=read-write{options}"
        )

    def stop(self) -> None:
        """Stop every server still running (immediate: nothing to keep) and remove the files."""
        for node in self.nodes:
            pid = node.postmaster_pid()
            if pid is None or not _alive(pid):
                continue
            with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
                self.run("pg_ctl", "stop", "-m", "immediate", "-w", "-D", str(node.datadir))
            if _alive(pid):
                for p in (pid, *_children(pid)):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(p, signal.SIGKILL)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(keep: bool = False) -> Iterator[Cluster]:
    """A started cluster, stopped (and removed unless ``keep``) at the end."""
    cluster = Cluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        if not keep:
            cluster.remove()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            # The command name is in parentheses and may hold spaces: fields follow the last ')'.
            ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
            if ppid == pid:
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"
