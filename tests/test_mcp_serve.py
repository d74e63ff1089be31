"""`convosim serve`: the MCP SDK's own client, over stdio and over streamable HTTP (a real server
process on 127.0.0.1, stopped by the test), lists the domain's tools, calls them, and sees its own
session's writes and never another client's."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from conftest import EXAMPLES

CONVOSIM = str(Path(sys.executable).parent / "convosim")
RETAIL = str(EXAMPLES / "retail")


async def _order_shipping(session: ClientSession) -> str:
    result = await session.call_tool("get_order", {"order_id": 1001})
    assert not result.is_error
    return json.loads(result.content[0].text)["shipping_address"]


async def _readdress(session: ClientSession, address: str) -> None:
    result = await session.call_tool("update_shipping_address", {"order_id": 1001, "shipping_address": address})
    assert not result.is_error, result.content


def test_a_stdio_client_lists_calls_and_sees_its_own_writes() -> None:
    async def go() -> None:
        params = StdioServerParameters(command=CONVOSIM, args=["serve", RETAIL])
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            names = {t.name for t in listed.tools}
            assert {"get_order", "update_shipping_address", "cancel_order"} <= names
            schema = next(t for t in listed.tools if t.name == "get_order").input_schema
            assert schema["required"] == ["order_id"]
            before = await _order_shipping(session)
            await _readdress(session, "12 Mill Lane, Lakeside")
            assert await _order_shipping(session) == "12 Mill Lane, Lakeside" != before
            refused = await session.call_tool("cancel_order", {"order_id": 1003})  # delivered: the guard refuses
            assert refused.is_error and "nothing was changed" in refused.content[0].text
            bad = await session.call_tool("get_order", {"order_id": "x"})
            assert bad.is_error and "invalid arguments" in bad.content[0].text

    asyncio.run(asyncio.wait_for(go(), 60))


@pytest.fixture
def http_server() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([CONVOSIM, "serve", RETAIL, "--http", str(port)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:  # ready when it accepts a connection; bounded
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MCP server did not start listening"
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_two_http_clients_each_have_their_own_database(http_server: str) -> None:
    async def go() -> None:
        async with (
            streamable_http_client(http_server) as (read_a, write_a),
            ClientSession(read_a, write_a) as a,
            streamable_http_client(http_server) as (read_b, write_b),
            ClientSession(read_b, write_b) as b,
        ):
            await a.initialize()
            await b.initialize()
            assert {t.name for t in (await a.list_tools()).tools} == {t.name for t in (await b.list_tools()).tools}
            original = await _order_shipping(b)
            await _readdress(a, "7 Quarry Road, Riverton")
            assert await _order_shipping(a) == "7 Quarry Road, Riverton"
            assert await _order_shipping(b) == original  # a's write is a's alone
            await _readdress(b, "3 Station Road, Springfield")
            assert await _order_shipping(a) == "7 Quarry Road, Riverton"
            assert await _order_shipping(b) == "3 Station Road, Springfield"

    asyncio.run(asyncio.wait_for(go(), 60))
