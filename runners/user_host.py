"""The user-simulator host: all User agents of a run, in their own OS process.

Started by `convosim run --isolate user`. It reads one JSON line of configuration (the recorded
scenario), answers `{"ready": pid}`, then serves requests, one JSON line each:
`{"id", "op": "event", "session_id", "event"}` -> `{"id", "events": [...]}` (what the user says),
`{"op": "release", "session_id"}` (the session ended), `{"id", "op": "stats"}` -> pid and counts.
Events cross the boundary as the same typed JSON the run store keeps; nothing else is shared.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from convosim.agents.user import UserSimulator
from convosim.config import scenario_from_record
from convosim.environments.domain import load_domain
from convosim.messages import event_from_json
from convosim.runners.session_factory import SessionFactory


async def serve() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    config = json.loads(await reader.readline())
    scenario = scenario_from_record(config["scenario"])
    domain = load_domain(scenario.domain)
    sessions = SessionFactory(scenario, domain, {})
    meter = sessions.meter
    factory = sessions.user_role()
    users: dict[str, UserSimulator] = {}
    handled = 0
    out = sys.stdout

    def send(message: dict[str, Any]) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    async def handle(request: dict[str, Any]) -> None:
        nonlocal handled
        sid = request["session_id"]
        user = users.get(sid)
        if user is None:
            made = factory(sid)
            assert isinstance(made, UserSimulator)
            user = users[sid] = made
        handled += 1
        try:
            events = await user.handle(event_from_json(json.dumps(request["event"])))
            usage = {role: u.to_record() for role, u in meter.pop(sid).items()}  # this reply's share: counted once
            send({"id": request["id"], "events": [e.model_dump(mode="json") for e in events], "usage": usage})
        except Exception as exc:  # the caller turns this into SessionFailed, like any handler error
            usage = {role: u.to_record() for role, u in meter.pop(sid).items()}  # failed calls are billed too
            send({"id": request["id"], "error": repr(exc), "usage": usage})

    send({"ready": os.getpid()})
    tasks: set[asyncio.Task[None]] = set()
    while line := await reader.readline():
        request = json.loads(line)
        if request["op"] == "event":
            task = asyncio.create_task(handle(request))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif request["op"] == "release":
            users.pop(request["session_id"], None)
        elif request["op"] == "stats":
            send({"id": request["id"], "pid": os.getpid(), "live": len(users), "handled": handled})


if __name__ == "__main__":
    asyncio.run(serve())
