"""`yrdgw serve` as a subprocess, as an operator runs it: the tests that need the real command
(the CLI end to end, signals, several gateway processes) start it through this."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

YRDGW = str(Path(sys.executable).parent / "yrdgw")


class ServedGateway:
    """One `yrdgw serve --config CONFIG` subprocess; its JSON log lines are collected from
    stderr."""

    def __init__(self, config: Path, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            [YRDGW, "serve", "--config", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._port: queue.Queue[int] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.port = 0

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)
            if '"gateway.started"' in line:
                self._port.put(int(json.loads(line)["port"]))

    def wait_started(self, timeout: float = 60.0) -> int:
        """The bound port, once the process logged that it serves (killed if it does not)."""
        try:
            self.port = self._port.get(timeout=timeout)
        except queue.Empty:
            self.kill()
            raise RuntimeError("yrdgw serve did not start:\n" + "".join(self.lines)) from None
        return self.port

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith("{")]

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM and wait (kill after ``timeout``); returns the exit code. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._close()
        return self.proc.returncode

    def kill(self) -> int:
        """SIGKILL when still running; returns the exit code. Safe to call twice."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._close()
        return self.proc.returncode

    def _close(self) -> None:
        self._reader.join(timeout=10)
        if self.proc.stderr is not None and not self.proc.stderr.closed:
            self.proc.stderr.close()
