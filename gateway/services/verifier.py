"""Ed25519 verification of a publish batch in a worker process, beside the thread that checks and
stores the batch.

A signature check needs no database, and it is the largest single cost of accepting an envelope;
in a thread it would wait for the interpreter lock behind the batch's own Python work, so it runs
in one separate process (one verifying thread, as the benchmark's raw limit assumes). The parent
sends ``(public key, signature, signed bytes)`` triples and reads one verdict byte per triple.

This module is also the worker program (``python -I verifier.py``): it imports only the standard
library and ``cryptography``, so starting it costs no gateway import.

Protocol, all integers big-endian: a request is a 4-byte count, then per item a 32-byte public
key, a 64-byte signature, a 4-byte length and that many signed bytes; the answer is one byte per
item, 1 for a valid signature and 0 otherwise.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import BinaryIO

_COUNT = struct.Struct(">I")
_ITEM = struct.Struct(">32s64sI")
_PATIENCE_S = 30.0
"""How long a request may take to be read and answered, plus ``_PER_ITEM_S`` an item; past it the
worker is stopped and the batch verified by its own thread."""
_PER_ITEM_S = 0.01


def _deadline(count: int) -> float:
    return time.monotonic() + _PATIENCE_S + count * _PER_ITEM_S


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the verifier's pipe closed")
    return data


def serve(requests: BinaryIO, answers: BinaryIO) -> None:
    """The worker loop: answer requests until the parent closes the pipe (or goes away)."""
    with contextlib.suppress(EOFError, BrokenPipeError):
        _serve(requests, answers)


def _serve(requests: BinaryIO, answers: BinaryIO) -> None:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric import ed25519

    keys: dict[bytes, ed25519.Ed25519PublicKey] = {}
    while True:
        header = requests.read(_COUNT.size)
        if len(header) < _COUNT.size:
            return
        (count,) = _COUNT.unpack(header)
        # The whole request is read before any check, so the parent's write never waits for
        # the verifying.
        items = []
        for _ in range(count):
            public, signature, size = _ITEM.unpack(_read_exactly(requests, _ITEM.size))
            items.append((public, signature, _read_exactly(requests, size)))
        verdicts = bytearray(count)
        for i, (public, signature, signed) in enumerate(items):
            key = keys.get(public)
            if key is None:
                try:
                    key = keys[public] = ed25519.Ed25519PublicKey.from_public_bytes(public)
                except ValueError:
                    continue
            try:
                key.verify(signature, signed)
            except InvalidSignature:
                continue
            verdicts[i] = 1
        answers.write(verdicts)
        answers.flush()


class Pending:
    """Verdicts on their way from the worker; ``verdicts()`` waits for them (once)."""

    def __init__(self, worker: SignatureWorker, count: int) -> None:
        self._worker, self._count = worker, count
        self._verdicts: list[bool] | None = None
        self._done = False

    def verdicts(self) -> list[bool] | None:
        """One verdict per submitted item, in order; None if the worker failed (verify again)."""
        if not self._done:
            self._done = True
            self._verdicts = self._worker._collect(self._count)
        return self._verdicts

    def close(self) -> None:
        """Take the answer if nobody did, so the worker is ready for the next request."""
        self.verdicts()


class SignatureWorker:
    """One worker process, shared by the threads of this process: a thread that finds it busy
    verifies on its own rather than waiting."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._closed = False

    @property
    def running(self) -> bool:
        """Whether the worker process is up."""
        process = self._process
        return process is not None and process.poll() is None

    def start(self) -> None:
        """Start the process now, if it is not running and nobody is using it (it takes a moment
        to start, and the first large batch should not wait for that)."""
        if self._closed or self.running or not self._lock.acquire(blocking=False):
            return
        try:
            self._start()
        except OSError:
            self._stop()
        finally:
            self._lock.release()

    def submit(self, items: Sequence[tuple[bytes, bytes, bytes]]) -> Pending | None:
        """Send ``(public key, signature, signed bytes)`` triples; None when the worker is busy
        or cannot run (the caller verifies them itself)."""
        if self._closed or not self._lock.acquire(blocking=False):
            return None
        try:
            process = self._start()
            assert process.stdin is not None
            parts = [_COUNT.pack(len(items))]
            for public, signature, signed in items:
                if len(public) != 32 or len(signature) != 64:
                    raise ValueError("public keys are 32 bytes and signatures 64")
                parts.append(_ITEM.pack(public, signature, len(signed)))
                parts.append(signed)
            self._send(process.stdin.fileno(), b"".join(parts), _deadline(len(items)))
        except (OSError, ValueError, TimeoutError):
            self._stop()
            self._lock.release()
            return None
        return Pending(self, len(items))

    @staticmethod
    def _send(fd: int, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            if not select.select([], [fd], [], max(0.0, deadline - time.monotonic()))[1]:
                raise TimeoutError("the verifier does not read")
            try:
                view = view[os.write(fd, view) :]
            except BlockingIOError:
                continue

    def _collect(self, count: int) -> list[bool] | None:
        try:
            process = self._process
            assert process is not None and process.stdout is not None
            fd, deadline = process.stdout.fileno(), _deadline(count)
            answer = bytearray()
            while len(answer) < count:
                if not select.select([fd], [], [], max(0.0, deadline - time.monotonic()))[0]:
                    raise TimeoutError("the verifier does not answer")
                chunk = os.read(fd, count - len(answer))
                if not chunk:
                    raise EOFError("the verifier ended")
                answer += chunk
            return [v == 1 for v in answer]
        except (OSError, EOFError, TimeoutError):
            self._stop()  # a late or partial answer would belong to no request
            return None
        finally:
            self._lock.release()

    def _start(self) -> subprocess.Popen[bytes]:
        if self._process is None or self._process.poll() is not None:
            # -I: no environment variables, user site or script directory on the path; the
            # worker needs only the interpreter's own packages.
            try:
                process = subprocess.Popen(  # noqa: S603 - our own interpreter and file
                    [sys.executable, "-I", __file__],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
            except OSError:
                self._closed = True  # cannot start here: every batch is verified by its thread
                raise
            assert process.stdin is not None
            # Written with os.write, never through the buffered file; without blocking, so a
            # worker that stops reading ends in a timeout rather than a hung publish.
            os.set_blocking(process.stdin.fileno(), False)
            self._process = process
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        """Stop the worker (it also ends by itself when this process's end of the pipe closes)."""
        with self._lock:
            self._closed = True
            self._stop()


_shared: SignatureWorker | None = None
_shared_lock = threading.Lock()


def shared_worker() -> SignatureWorker:
    """The process's worker, started on first use and stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SignatureWorker()
            atexit.register(_shared.close)
        return _shared


if __name__ == "__main__":
    import signal

    # Ctrl-C reaches the whole process group: the gateway shuts down, and the worker ends when
    # its pipe closes, without a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin.buffer, sys.stdout.buffer)
