"""`--isolate user`: the User agents live in another OS process, reached only through the bus.

On the bus, the "user" agent of each session is a thin proxy: every event addressed to the user
is serialised and sent to the user host process (runners/user_host.py) over a pipe, and what the
user says there comes back as typed events that the proxy publishes. The task travels to the
host inside `SessionStarted`, exactly as in-process; results are identical for a given seed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import Sequence
from typing import Any

from convosim.llm.usage import Usage, UsageMeter
from convosim.messages import BaseEvent, event_from_json


class UserHost:
    """The channel to the user host process."""

    def __init__(self, scenario: dict[str, Any], meter: UsageMeter | None = None) -> None:
        self.scenario = scenario
        self.meter = meter  # where the host's LLM usage is counted, as if the user ran here
        self.pid: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._reader: asyncio.Task[None] | None = None
        self.dead: str | None = None
        self._stopping = False  # why the host is gone, once it is: every later request fails at once

    async def start(self) -> None:
        self._proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "convosim.runners.user_host",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        self._write({"scenario": self.scenario})
        assert self._proc.stdout is not None
        ready = json.loads(await asyncio.wait_for(self._proc.stdout.readline(), 60))
        self.pid = int(ready["ready"])
        self._reader = asyncio.create_task(self._read())

    def _write(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        self._proc.stdin.write((json.dumps(message) + "\n").encode())

    async def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while line := await self._proc.stdout.readline():
            reply = json.loads(line)
            future = self._pending.pop(reply.get("id"), None)
            if future is not None and not future.done():
                future.set_result(reply)
        code = await self._proc.wait()
        if not self._stopping:
            self.dead = f"the user host process (pid {self.pid}) exited with code {code}"
        for future in self._pending.values():  # the host died: fail what was waiting
            if not future.done():
                future.set_exception(RuntimeError(self.dead or "the user host process exited"))
        self._pending.clear()

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.dead is not None:
            raise RuntimeError(self.dead)
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        self._write({**message, "id": request_id})
        return await future

    async def call(self, session_id: str, event: BaseEvent) -> list[BaseEvent]:
        reply = await self.request({"op": "event", "session_id": session_id, "event": event.model_dump(mode="json")})
        if self.meter is not None:
            for role, usage in (reply.get("usage") or {}).items():
                self.meter.record(session_id, role, Usage.from_record(usage))
        if "error" in reply:
            raise RuntimeError(f"user host: {reply['error']}")
        return [event_from_json(json.dumps(e)) for e in reply["events"]]

    def release(self, session_id: str) -> None:
        if self.dead is None:
            self._write({"op": "release", "session_id": session_id})

    async def stats(self) -> dict[str, Any]:
        return await self.request({"op": "stats"})

    async def stop(self) -> None:
        if self._proc is None:
            return
        self._stopping = True
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            await asyncio.wait_for(self._proc.wait(), 10)
        except TimeoutError:
            self._proc.kill()
        if self._reader is not None:
            await self._reader


class RemoteUser:
    """The bus-side proxy for one session's User agent."""

    def __init__(self, session_id: str, host: UserHost) -> None:
        self.session_id = session_id
        self.host = host

    async def handle(self, event: BaseEvent) -> Sequence[BaseEvent]:
        return await self.host.call(self.session_id, event)
