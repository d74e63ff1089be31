"""A deterministic assistant that understands the domain's phrasings.

It parses each user message into tool requests (slots typed by the parameter schemas), asks for
missing required values, and answers from tool outputs. Before it offers a write it checks the
policy's declared precondition on the record (from what the conversation already showed, else by
reading it): a change the policy forbids is refused with the policy's reason, never read back nor
attempted. An allowed write is read back and runs only after the user agrees. A tool error is told
in plain words, never as the database's message. Its only inputs are the observation a deployed
assistant would have; it never sees the task.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from convosim.agents.offline_language import (
    AFFIRM_RE,
    CLOSING_RE,
    CORRECTION_RE,
    DENY_RE,
    READBACK_RE,
    SUPPLY_RE,
    AssistantVoice,
)
from convosim.agents.policies import AssistantAction, AssistantObservation, PlannedCall
from convosim.environments.phrasing import PhraseBook, convert, label, render_value, same_value, slot_pattern
from convosim.environments.sql_checks import written_parameters
from convosim.models import ToolSpec


@dataclass
class _Pending:
    tool: ToolSpec
    args: dict[str, Any]
    confirmed: bool = False
    checked: bool = False  # the policy's precondition was checked on the record
    precheck_for: _Pending | None = None  # this read only checks a write's precondition
    read_for_check: bool = False  # the record was read for the check (never read twice)
    asked: set[str] = field(default_factory=set)


_UNSEEN = object()


class OfflineAssistantPolicy:
    def __init__(self, book: PhraseBook, seed: int = 0) -> None:
        self.tools = book.tools
        self.book = book
        self.voice = AssistantVoice(random.Random(seed))
        self.queue: list[_Pending] = []
        self.awaiting: Literal["value", "confirm"] | None = None
        self.asked_param: str | None = None
        self.answers: list[str] = []
        self.running: _Pending | None = None
        self.messages: tuple[dict[str, Any], ...] = ()

    async def act(self, observation: AssistantObservation) -> AssistantAction:
        self.messages = observation.messages
        last = observation.messages[-1]
        if last["role"] == "tool":
            return self._on_tool_result(observation.messages)
        self.answers = []
        return self._on_user(str(last.get("content") or ""), observation.messages)

    # --- user turns -------------------------------------------------------------------------
    def _on_user(self, text: str, messages: tuple[dict[str, Any], ...]) -> AssistantAction:
        if self.awaiting == "confirm":
            return self._on_confirmation(text)
        if self.awaiting == "value":
            return self._on_value(text)
        readback = READBACK_RE.search(text)
        if readback:
            return self._check_readback(readback.group("label"), readback.group("value"), messages)
        requests = self.book.parse(text)
        if not requests:
            if CLOSING_RE.search(text):
                return AssistantAction(content=self.voice.farewell())
            return AssistantAction(content=self.voice.not_understood())
        self.queue.extend(_Pending(self.tools[r.tool], dict(r.args)) for r in requests)
        return self._advance()

    def _on_value(self, text: str) -> AssistantAction:
        pending, name = self.queue[0], self.asked_param
        assert name is not None
        schema = pending.tool.properties[name]
        m = SUPPLY_RE.search(text)
        raw = m.group("value") if m else text.strip().rstrip(".")
        if re.fullmatch(slot_pattern(schema), raw, re.IGNORECASE) is None:
            return self._say(self.voice.invalid(name))
        pending.args[name] = convert(raw, schema)
        self.awaiting = None
        return self._advance()

    def _on_confirmation(self, text: str) -> AssistantAction:
        pending = self.queue[0]
        corrections = list(CORRECTION_RE.finditer(text))
        if corrections:
            for m in corrections:
                name = next((p for p in pending.tool.properties if label(p) == m.group("label").lower()), None)
                if name is not None:
                    pending.args[name] = convert(m.group("value"), pending.tool.properties[name])
            return self._advance()
        if AFFIRM_RE.search(text) and not DENY_RE.search(text):
            pending.confirmed = True
            self.awaiting = None
            return self._advance()
        if DENY_RE.search(text):
            self.queue.pop(0)
            self.awaiting = None
            self.answers.append(self.voice.cancelled())
            return self._advance()
        return self._advance()

    def _check_readback(self, field_label: str, value: str, messages: tuple[dict[str, Any], ...]) -> AssistantAction:
        """Answer "the X is now Y, right?" from the most recent tool output that has an X."""
        for message in reversed(messages):
            if message["role"] != "tool":
                continue
            output = json.loads(message["content"])
            for row in output if isinstance(output, list) else [output]:
                for name, actual in row.items() if isinstance(row, dict) else []:
                    if label(name) == field_label.lower():
                        if same_value(actual, value):
                            return self._say(self.voice.readback_ok(field_label, value))
                        return self._say(self.voice.readback_wrong(field_label, actual))
        return self._say(self.voice.readback_unknown(field_label))

    # --- tool results -----------------------------------------------------------------------
    def _on_tool_result(self, messages: tuple[dict[str, Any], ...]) -> AssistantAction:
        output = json.loads(messages[-1]["content"])
        running, self.running = self.running, None
        failed = isinstance(output, dict) and set(output) == {"error"}
        if running is not None and running.precheck_for is not None:
            if failed:  # the record to change is not there: nothing to offer
                self.queue = [p for p in self.queue if p is not running.precheck_for]
                self.answers.append(self.voice.error(str(output["error"]), running.args))
            return self._advance()
        if failed:
            self.answers.append(self.voice.error(str(output["error"]), running.args if running else {}))
        elif running is None:
            self.answers.append(self.voice.answer("results", "read", output, {}))
        else:
            told = self._record_keys(running) if running.tool.kind == "write" else running.args
            self.answers.append(self.voice.answer(running.tool.name, running.tool.kind, output, told))
        return self._advance()

    # --- planning ---------------------------------------------------------------------------
    def _advance(self) -> AssistantAction:
        if self.queue:
            pending = self.queue[0]
            missing = [p for p in pending.tool.required if p not in pending.args]
            if missing:
                self.awaiting, self.asked_param = "value", missing[0]
                return self._say(self.voice.ask(missing[0]))
            if pending.tool.kind == "write" and not pending.checked and pending.tool.precondition is not None:
                return self._check_precondition(pending)
            if pending.tool.kind == "write" and not pending.confirmed and pending.tool.confirm:
                self.awaiting = "confirm"
                return self._say(self.voice.confirm(pending.tool.name, pending.args))
            self.queue.pop(0)
            self.running = pending
            return AssistantAction(tool_calls=(PlannedCall(name=pending.tool.name, arguments=pending.args),))
        if self.answers:
            return self._say(self.voice.follow_up())
        return self._say(self.voice.not_understood())

    def _check_precondition(self, pending: _Pending) -> AssistantAction:
        """Check the policy's rule on the record before offering the change: from what the
        conversation already showed, else by reading the record; refuse, with the reason, if not allowed."""
        rule = pending.tool.precondition
        assert rule is not None
        keys = self._record_keys(pending)
        value = self._seen(keys, rule.field)
        if value is _UNSEEN and rule.read is not None and not pending.read_for_check:
            pending.read_for_check = True
            self.running = _Pending(self.tools[rule.read], keys, precheck_for=pending)
            return AssistantAction(tool_calls=(PlannedCall(name=rule.read, arguments=keys),))
        pending.checked = True
        if value is not _UNSEEN and str(value).casefold() not in {str(a).casefold() for a in rule.allowed}:
            self.queue = [p for p in self.queue if p is not pending]
            self.answers.append(self.voice.refuse(pending.args, rule.field, value, rule.reason))
        return self._advance()

    def _record_keys(self, pending: _Pending) -> dict[str, Any]:
        """The arguments that pick the record a write changes: what its precondition's read takes,
        else every argument the write does not store."""
        rule = pending.tool.precondition
        if rule is not None and rule.read is not None:
            return {k: v for k, v in pending.args.items() if k in self.tools[rule.read].properties}
        stored = written_parameters(pending.tool.sql) if pending.tool.sql else frozenset()
        return {k: v for k, v in pending.args.items() if k not in stored}

    def _seen(self, keys: dict[str, Any], name: str) -> Any:
        """The latest value of `name` the tools showed for a record (a row that carries `name`
        and agrees with `keys` on every one it also carries)."""
        for message in reversed(self.messages):
            if message["role"] != "tool":
                continue
            output = json.loads(message["content"])
            for row in output if isinstance(output, list) else [output]:
                if not isinstance(row, dict) or name not in row:
                    continue
                shared = [k for k in keys if k in row]
                if shared and all(same_value(row[k], render_value(keys[k])) for k in shared):
                    return row[name]
        return _UNSEEN

    def _say(self, text: str | None) -> AssistantAction:
        content = " ".join([*self.answers, *([text] if text else [])])
        self.answers = []
        return AssistantAction(content=content)
