"""The fault tests reuse the integration tests' gateway (real mTLS, port 0, on SQLite and on
PostgreSQL) and their clients."""

import pytest

from tests.integration.conftest import client_for, server

__all__ = ["client_for", "server"]


def pytest_addoption(parser: pytest.Parser) -> None:
    # The crash harness (test_crash.py) draws a fresh seed per run and prints it; this replays one.
    parser.addoption("--seed", type=int, default=None, help="replay the crash harness's seed N")
