"""The administrators' web console for mutual recognition (``yrdgw console``): a small web
application on 127.0.0.1 that is just another client of the gateway, signing decisions with the
administrator's key."""

from gateway.console.app import create_app
from gateway.console.backend import ConsoleBackend
from gateway.console.server import ConsoleServer, run_console

__all__ = ["ConsoleBackend", "ConsoleServer", "create_app", "run_console"]
