import socket

import pytest

from conftest import NetworkAccessError


def test_outside_address_is_refused() -> None:
    with pytest.raises(NetworkAccessError), socket.create_connection(("93.184.216.34", 80), timeout=1):
        pass


def test_name_resolution_is_refused() -> None:
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("example.com", 443)


def test_loopback_is_allowed() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        with socket.create_connection(server.getsockname(), timeout=1) as client:
            assert client.getpeername() == server.getsockname()
    finally:
        server.close()
