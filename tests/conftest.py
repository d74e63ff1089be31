"""Shared fixtures, and a guard that fails any test trying to reach beyond 127.0.0.1."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_local(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class NetworkAccessError(AssertionError):
    pass


def _guard_address(address: Any) -> None:
    host = address[0] if isinstance(address, tuple) else address
    if not _is_local(host):
        raise NetworkAccessError(f"test tried to reach {address!r}: tests may only use 127.0.0.1")


def _connect(self: socket.socket, address: Any) -> Any:
    _guard_address(address)
    return _real_connect(self, address)


def _connect_ex(self: socket.socket, address: Any) -> Any:
    _guard_address(address)
    return _real_connect_ex(self, address)


def _getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_local(host if isinstance(host, str) else host.decode()):
        raise NetworkAccessError(f"test tried to resolve {host!r}: tests may only use 127.0.0.1")
    return _real_getaddrinfo(host, *args, **kwargs)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--live", action="store_true", help="also run tests against real providers (needs keys)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--live"):
        return
    skip = pytest.mark.skip(reason="live-provider test: run with --live and a provider key")
    for item in items:
        if "live" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def no_internet(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    if "live" in request.keywords:
        return  # explicitly requested with --live: these talk to a real provider
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _getaddrinfo)


@pytest.fixture(scope="session")
def retail_dir() -> Path:
    return EXAMPLES / "retail"


@pytest.fixture(scope="session")
def telecom_dir() -> Path:
    return EXAMPLES / "telecom"
