"""`convosim serve DOMAIN`: a domain's tools as an MCP server (the official `mcp` SDK).

Any MCP-capable agent can then be exercised against convosim's state: every client connection gets
its own clone of the domain's template database, so a write one client makes is visible to it in
its later calls and never to another client. Tools are listed with their JSON-schema parameters
and, where the domain has them, their output schemas; a call runs exactly as in a session (the
same argument checks, guards and limits) and returns the output as JSON text and as structured
content, or an error result. Transports: stdio (one client) and streamable HTTP on 127.0.0.1.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server

from convosim.environments.domain import Domain, SessionEnvironment


class DomainTools:
    """The per-connection databases and the two MCP handlers."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.environments: dict[int, tuple[Any, SessionEnvironment]] = {}
        self.calls = itertools.count(1)

    def environment(self, ctx: Any) -> SessionEnvironment:
        """The connection's own database, made on its first call. The SDK builds a session object
        per request; what they share is the connection (`ServerSession._connection` in the pinned
        SDK: its public API names no connection yet), one per stdio process or HTTP client."""
        connection = getattr(ctx.session, "_connection", None)
        if connection is None:
            raise RuntimeError("this mcp SDK gives no way to tell clients apart: pin the locked version")
        held = self.environments.get(id(connection))
        if held is None or held[0] is not connection:  # an id reused by a new connection: a new clone
            held = (connection, self.domain.new_session())
            self.environments[id(connection)] = held
        return held[1]

    async def list_tools(self, ctx: Any, params: Any) -> types.ListToolsResult:
        tools = []
        for spec in self.domain.tools.values():  # output schemas are not advertised: clients would hold
            # every structured result to them, and a list result is not an object
            hints = types.ToolAnnotations(read_only_hint=spec.kind == "read")
            tools.append(
                types.Tool(
                    name=spec.name, description=spec.description, input_schema=spec.parameters, annotations=hints
                )
            )
        return types.ListToolsResult(tools=tools)

    async def call_tool(self, ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        if params.name not in self.domain.tools:
            return _error(f"unknown tool {params.name!r}")
        result = self.environment(ctx).call(f"mcp_{next(self.calls)}", params.name, dict(params.arguments or {}))
        text = json.dumps(result.output, ensure_ascii=False, sort_keys=True)
        if result.is_error:
            return _error(str(result.output.get("error", text)) if isinstance(result.output, dict) else text)
        structured = result.output if isinstance(result.output, dict) else {"result": result.output}
        return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured)

    def close(self) -> None:
        for _, environment in self.environments.values():
            environment.close()
        self.environments.clear()


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def build_server(domain: Domain) -> tuple[Server[Any], DomainTools]:
    tools = DomainTools(domain)
    server: Server[Any] = Server(
        f"convosim-{domain.name}",
        instructions=domain.policy,
        on_list_tools=tools.list_tools,
        on_call_tool=tools.call_tool,
    )
    return server, tools


async def serve_stdio(domain: Domain) -> None:
    from mcp.server.stdio import stdio_server

    server, tools = build_server(domain)
    try:
        async with stdio_server() as (read, write):
            await server.run(read, write, server.create_initialization_options())
    finally:
        tools.close()


def serve_http(domain: Domain, port: int) -> None:
    import uvicorn

    server, tools = build_server(domain)
    try:
        app = server.streamable_http_app(host="127.0.0.1")
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        tools.close()
