"""Shutdown as an operator does it, with `yrdgw serve` and a `yrdgw registry subscribe --follow`
in their own processes: SIGTERM ends the follower's stream at once and it prints its cursor and
reconnects; a second signal during the grace makes the gateway exit at once; the gateway started
again, the follower prints every later record exactly once.

Nothing is timed: the grace is 600 s and a Publish stream held open by the test keeps the
gateway in it, so the follower's cursor line (and the forced exit) can only come from the new
behaviour, never from the grace running out.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from yrd.interop.v1 import registry_service_pb2

from gateway.client import GatewayClient
from gateway.samples import sample_documents
from gateway.security.pki import PKIDir
from tests.served import ServedGateway

pytestmark = pytest.mark.e2e
YRDGW = str(Path(sys.executable).parent / "yrdgw")
WAIT = 60.0
"""Generous bound for each awaited line or exit (never reached unless something is broken)."""
SAMPLES = Path(__file__).resolve().parents[2] / "adapters" / "samples"


class Lines:
    """The lines of a pipe, read on a thread, awaited one by one."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe: IO[str]) -> None:
        for line in pipe:
            self._queue.put(line.rstrip("\n"))

    def join(self) -> None:
        """Wait for the end of the pipe (the process is gone)."""
        self._thread.join(timeout=WAIT)

    def until(self, found: Callable[[str], bool], what: str) -> str:
        """The next line for which ``found`` holds (earlier lines are kept in ``seen``)."""
        while True:
            try:
                line = self._queue.get(timeout=WAIT)
            except queue.Empty:
                raise AssertionError(f"no line with {what}; saw {self.seen}") from None
            self.seen.append(line)
            if found(line):
                return line


def run(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [YRDGW, *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, f"yrdgw {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def write_config(path: Path, pki: Path, database: Path, listen: str) -> Path:
    path.write_text(
        f'listen = "{listen}"\ndatabase_url = "sqlite:///{database}"\ncert_dir = "{pki}"\n'
        'metrics_listen = ""\nlog_format = "json"\nshutdown_grace_s = 600\n'
        "recognition_enforced = false\nscheduler_enabled = false\n"
    )
    return path


class HeldPublish:
    """A Publish stream kept open by the test: a call in flight through the grace."""

    def __init__(self, client: GatewayClient) -> None:
        self._client = client
        self._outbox: queue.Queue[registry_service_pb2.PublishRequest | None] = queue.Queue()
        self._stream = client.registry.Publish(self._requests(), timeout=600)

    def _requests(self) -> Iterator[registry_service_pb2.PublishRequest]:
        while (request := self._outbox.get()) is not None:
            yield request

    def send(self, content_type: str, payload: bytes) -> bool:
        envelope = self._client.signer.sign(content_type, payload)
        self._outbox.put(registry_service_pb2.PublishRequest(envelopes=[envelope]))
        (result,) = next(self._stream).results
        return result.accepted

    def close(self) -> None:
        self._outbox.put(None)
        self._stream.cancel()


@pytest.fixture
def pki_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    run("pki", "init", "--dir", str(directory))
    return directory


def test_sigterm_ends_the_follower_with_its_cursor_and_a_second_signal_exits_at_once(
    pki_dir: Path, tmp_path: Path
) -> None:
    database = tmp_path / "gw.sqlite3"
    first = ServedGateway(write_config(tmp_path / "a.toml", pki_dir, database, "127.0.0.1:0"))
    second: ServedGateway | None = None
    follower: subprocess.Popen[str] | None = None
    readers: list[Lines] = []
    publisher: GatewayClient | None = None
    try:
        first.wait_started(timeout=WAIT)
        common = ["--gateway", first.target, "--cert-dir", str(pki_dir)]
        sh = [str(SAMPLES / f"310000-{k}.json") for k in ("methodology", "project", "issuance")]
        run("registry", "publish", "--region", "310000", *common, *sh)
        follower = subprocess.Popen(
            [YRDGW, "registry", "subscribe", "--region", "320000", *common, "--follow", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert follower.stdout is not None and follower.stderr is not None
        out, err = Lines(follower.stdout), Lines(follower.stderr)
        readers += [out, err]
        cursors = [json.loads(out.until(bool, "an event"))["cursor"] for _ in range(3)]

        publisher = GatewayClient(first.target, PKIDir(pki_dir), region="330000")
        publisher.sync_signer()
        held = HeldPublish(publisher)
        zj = sample_documents("330000")
        assert held.send(*zj[0])
        cursors.append(json.loads(out.until(bool, "an event"))["cursor"])
        assert cursors == ["1", "2", "3", "4"]

        first.proc.send_signal(signal.SIGTERM)
        ended = err.until(lambda line: line.startswith("stream ended"), "the stream's end")
        assert "GATEWAY_SHUTTING_DOWN" in ended and ended.endswith("cursor: 4")
        err.until(lambda line: line.startswith("reconnecting from 4"), "reconnecting")
        # Still in its grace (the held call), yet the follower already had its cursor.
        assert first.proc.poll() is None
        assert held.send(*zj[1])  # and the call in flight is still served

        first.proc.send_signal(signal.SIGINT)  # the second signal: exit now
        assert first.proc.wait(timeout=WAIT) == 128 + signal.SIGINT
        events = [json.loads(line)["event"] for line in first.lines if line.startswith("{")]
        assert "gateway.forced_exit" in events and "gateway.stopped" not in events
        held.close()

        # Started again on the same port and database: the follower reconnects from its cursor.
        port = first.port
        first.kill()
        second = ServedGateway(
            write_config(tmp_path / "b.toml", pki_dir, database, f"127.0.0.1:{port}")
        )
        second.wait_started(timeout=WAIT)
        assert publisher.publish([zj[2]])[0].accepted
        cursors += [json.loads(out.until(bool, "an event"))["cursor"] for _ in range(2)]
        # Every record once, in order: the project accepted during the grace, then the issuance.
        assert cursors == ["1", "2", "3", "4", "5", "6"]
        reconnects = [line for line in err.seen if line.startswith("reconnecting from")]
        assert all(line.startswith("reconnecting from 4") for line in reconnects)
    finally:
        if publisher is not None:
            publisher.close()
        if follower is not None:
            follower.kill()
            follower.wait()
            for reader in readers:
                reader.join()
            for pipe in (follower.stdout, follower.stderr):
                if pipe is not None:
                    pipe.close()
        for gateway in (first, second):
            if gateway is not None:
                gateway.kill()
