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


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket.socket, "connect", _connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _getaddrinfo)


@pytest.fixture(scope="session")
def retail_dir() -> Path:
    return EXAMPLES / "retail"


@pytest.fixture(scope="session")
def telecom_dir() -> Path:
    return EXAMPLES / "telecom"
