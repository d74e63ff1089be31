"""A mutation test of the validator: corrupt real accepted sessions on purpose and count the catch.

Sessions come from real offline runs of both examples. Each corruption is one kind of error a
generator makes (a swapped or truncated value, a dropped fact, a placeholder, a tool output edited
after the fact, a read-back of something never asked, a write to the wrong row, a row without its
system prompt, a duplicate); the validator must reject at least 99% with the right reason code,
and reject none of the sessions as recorded.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from punct_domain import build_punct_domain
from typer.testing import CliRunner

from convosim.agents.offline_language import READBACK
from convosim.agents.offline_speech import expand
from convosim.chat_format import chat_messages
from convosim.cli import app
from convosim.environments.domain import Domain, load_domain
from convosim.environments.phrasing import SPOKEN_DATE, iso_date, label, render_value, spoken_value
from convosim.environments.sql_checks import written_parameters
from convosim.environments.tasks import load_tasks
from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    SessionEnded,
    SessionStarted,
    ToolCall,
    ToolCallRequest,
    ToolOutput,
    ToolResult,
    UserMessage,
)
from convosim.models import Rubric, ToolRequest
from convosim.rules.behaviours import REFUSAL_RE
from convosim.rules.checks import Checks, judge
from convosim.rules.grounding import leaves
from convosim.runners.export import openai_messages
from convosim.runners.exports import rename_call_ids
from convosim.runners.roles import validator_checks
from convosim.runners.row_checks import RowChecks
from convosim.runners.store import RunStore

from conftest import EXAMPLES
from support import run, scenario_for


@dataclass
class Example:
    name: str
    domain: Domain
    rubrics: dict[str, Rubric]
    checks: Checks
    sessions: list[SessionEnded]  # accepted, each with its transcript
    tasks: Path  # the task file, for `convosim judge --tasks`


CORRUPTED = 40  # sessions of each domain that every corruption is applied to


def _ended(events: list[BaseEvent]) -> SessionEnded:
    at = next(i for i, e in enumerate(events) if isinstance(e, SessionEnded))
    ended = events[at]
    assert isinstance(ended, SessionEnded)
    return ended.model_copy(update={"transcript": tuple(events[:at])})


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> list[Example]:
    out = []
    built = build_punct_domain(tmp_path_factory.mktemp("punct-domain"))  # a domain the tests build themselves
    for name, path in (
        ("retail", EXAMPLES / "retail" / "scenario.yaml"),
        ("telecom", EXAMPLES / "telecom" / "scenario.yaml"),
        ("punct", built),
    ):
        scenario = scenario_for(path, sessions=170, seed=5)  # 510 clean sessions in all; the first 40 are corrupted
        folder = tmp_path_factory.mktemp(name)
        run(scenario, folder)
        domain = load_domain(scenario.domain)
        _, rubrics = load_tasks(scenario.tasks, domain)
        store = RunStore(folder / "run.sqlite")
        try:
            ended = [
                _ended(list(store.events(row["session_id"]))) for row in store.sessions() if row["status"] == "accepted"
            ]
        finally:
            store.close()
        out.append(Example(name, domain, rubrics, validator_checks(scenario, domain), ended, scenario.tasks))
    return out


# --- corruptions of a session: each returns the corrupted session, or None where it does not apply ---

Mutation = Callable[[SessionEnded, Example, random.Random], SessionEnded | None]


def _replace(ended: SessionEnded, index: int, event: BaseEvent) -> SessionEnded:
    transcript = list(ended.transcript)
    transcript[index] = event
    return ended.model_copy(update={"transcript": tuple(transcript)})


def _session_text(ended: SessionEnded) -> str:
    return "\n".join(str(m) for e in ended.transcript for m in chat_messages(e))


def _told_values(ended: SessionEnded, upto: int) -> list[Any]:
    """Values tool outputs gave the assistant before event `upto`, longest first (a tool error's
    message is not a value: "no matching record found" cut to "no" states nothing)."""
    values = {
        v
        for e in ended.transcript[:upto]
        if isinstance(e, ToolResult)
        for r in e.results
        if not r.is_error
        for v in leaves(r.output)
        if not isinstance(v, bool)
    }
    return sorted(values, key=lambda v: (-len(render_value(v)), str(v)))


def _assistant_messages(ended: SessionEnded) -> Iterator[tuple[int, AssistantMessage]]:
    for i, event in enumerate(ended.transcript):
        if isinstance(event, AssistantMessage):
            yield i, event


def _other_value(value: Any, example: Example, taken: str, rng: random.Random) -> Any:
    """A value of the same kind that appears nowhere in the session (nor in its policy)."""
    if isinstance(value, int):
        return value + 7919
    if isinstance(value, float):
        return round(value + 13.37, 2)
    pool = sorted(
        {
            v
            for rows in example.domain.snapshot.values()
            for row in rows
            for v in row.values()
            if isinstance(v, str) and len(v) > 3 and v.lower() not in taken.lower()
        }
    )
    return rng.choice(pool)


def swap_value(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """An assistant message states a value no tool returned and no one said."""
    taken = _session_text(ended) + example.domain.policy
    for i, message in _assistant_messages(ended):
        for value in _told_values(ended, i):
            spoken = render_value(value)
            if len(spoken) >= 3 and spoken in message.content:
                other = render_value(_other_value(value, example, taken, rng))
                content = message.content.replace(spoken, other, 1)
                if content != message.content:  # the other value may be spelled the same
                    return _replace(ended, i, message.model_copy(update={"content": content}))
    return None


def truncate_value(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A multi-word value is said cut short at its first space or punctuation."""
    for i, message in _assistant_messages(ended):
        for value in _told_values(ended, i):
            spoken = render_value(value)
            raw = str(value)
            cut = re.search(r"[\s.,;:-]", raw)
            if isinstance(value, str) and cut and cut.start() >= 2 and spoken in message.content:
                content = message.content.replace(spoken, raw[: cut.start()], 1)
                return _replace(ended, i, message.model_copy(update={"content": content}))
    return None


def drop_fact(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """Every `field: value` or `the field is value` stating one rubric fact is removed from the assistant's messages."""
    facts = [f for f in example.rubrics[ended.task_id].facts if isinstance(f.value, str) and len(f.value) > 3]
    for fact in facts:
        transcript = list(ended.transcript)
        said = "|".join(re.escape(v) for v in {render_value(fact.value), spoken_value(fact.value)})
        field = re.escape(label(fact.field))
        pair = re.compile(rf"(?:,\s*|\s+and\s+)?\b(?:{field}: |the {field} is (?:now )?)(?:{said})")
        changed = False
        for i, message in _assistant_messages(ended):
            content = pair.sub("", message.content)
            if fact.value.lower() in content.lower():
                break  # stated some other way too: dropping the pair would not drop the fact
            changed |= content != message.content
            transcript[i] = message.model_copy(update={"content": content})
        else:
            if changed:
                return ended.model_copy(update={"transcript": tuple(transcript)})
    return None


PLACEHOLDERS = [
    "${1.return_id}",
    "{order_id}",
    "${three.reason}",
    "{{ customer_name }}",
    "${2.plan_id}",
    "<customer_id>",
    "[ORDER_ID]",
    "{0}",
    "%s",
    "__id__",
    "[PHONE]",
    "%(name)s",
    "<order_number>",
]


def inject_placeholder(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A template slot left unrendered in an assistant message, a user message or a tool argument."""
    placeholder = rng.choice(PLACEHOLDERS)
    where = rng.choice(["assistant", "user", "argument"])
    for i, event in enumerate(ended.transcript):
        if where == "assistant" and isinstance(event, AssistantMessage):
            return _replace(ended, i, event.model_copy(update={"content": f"{event.content} Ref: {placeholder}."}))
        if where == "user" and isinstance(event, UserMessage) and i > 3:
            return _replace(ended, i, event.model_copy(update={"content": f"{event.content} ({placeholder})"}))
        if where == "argument" and isinstance(event, ToolCallRequest):
            call = event.calls[0]
            if isinstance(call.arguments, dict) and call.arguments:
                name = sorted(call.arguments)[0]
                args = {**call.arguments, name: placeholder}
                calls = (call.model_copy(update={"arguments": args}), *event.calls[1:])
                return _replace(ended, i, event.model_copy(update={"calls": calls}))
    return None


def tamper_output(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A tool output edited after the fact: one field of one row changed."""
    results = [(i, e) for i, e in enumerate(ended.transcript) if isinstance(e, ToolResult)]
    rng.shuffle(results)
    for i, event in results:
        for j, result in enumerate(event.results):
            row = result.output[0] if isinstance(result.output, list) and result.output else result.output
            if result.is_error or not isinstance(row, dict) or not row:
                continue
            key = rng.choice(sorted(row))
            value = row[key]
            new_value = value + 1 if isinstance(value, int | float) and not isinstance(value, bool) else f"{value}X"
            new_row = {**row, key: new_value}
            output = [new_row, *result.output[1:]] if isinstance(result.output, list) else new_row
            outputs = list(event.results)
            outputs[j] = result.model_copy(update={"output": output})
            return _replace(ended, i, event.model_copy(update={"results": tuple(outputs)}))
    return None


def _successful_writes(ended: SessionEnded, example: Example) -> Iterator[tuple[int, ToolCall]]:
    ok = {r.call_id for e in ended.transcript if isinstance(e, ToolResult) for r in e.results if not r.is_error}
    for i, event in enumerate(ended.transcript):
        if isinstance(event, ToolCallRequest):
            for call in event.calls:
                if call.id in ok and example.domain.tools[call.name].kind == "write":
                    yield i, call


def confirm_unrequested(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """After a change, the user 'confirms' a field the change never touched (or a wrong value)."""
    for i, call in _successful_writes(ended, example):
        after = next(
            (k for k in range(i + 1, len(ended.transcript)) if isinstance(ended.transcript[k], UserMessage)), None
        )
        if after is None or not isinstance(call.arguments, dict):
            continue
        written = written_parameters(example.domain.tools[call.name].sql or "")
        kept = [k for k in sorted(call.arguments) if k not in written]
        changed = [k for k in sorted(call.arguments) if k in written]
        if kept and rng.random() < 0.5:
            name, value = kept[0], call.arguments[kept[0]]  # the key that only selected the record
        elif changed:
            taken = _session_text(ended) + example.domain.policy
            name, value = changed[0], _other_value(call.arguments[changed[0]], example, taken, rng)
        else:
            continue
        message = ended.transcript[after]
        assert isinstance(message, UserMessage)
        readback = expand(rng, READBACK, label=label(name), value=render_value(value))
        return _replace(ended, after, message.model_copy(update={"content": f"{readback} {message.content}"}))
    return None


def wrong_row(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A write lands on another record: the session is re-run with that call's key changed, so its
    outputs and final state are consistent with the wrong write (only the rubric can tell)."""
    for _, call in _successful_writes(ended, example):
        tool = example.domain.tools[call.name]
        keys = [k for k in sorted(call.arguments) if k not in written_parameters(tool.sql or "")]
        if not keys or not isinstance(call.arguments, dict):
            continue
        key = keys[0]
        candidates = sorted(
            {row[key] for rows in example.domain.snapshot.values() for row in rows if row.get(key) is not None}
            - {call.arguments[key]},
            key=str,
        )
        rng.shuffle(candidates)
        for other in candidates[:12]:
            corrupted = _rerun(ended, example, call.id, {**call.arguments, key: other})
            if corrupted is not None:
                return corrupted
    return None


def _rerun(ended: SessionEnded, example: Example, call_id: str, args: dict[str, Any]) -> SessionEnded | None:
    env = example.domain.new_session()
    try:
        transcript: list[BaseEvent] = []
        outputs: dict[str, ToolOutput] = {}
        for event in ended.transcript:
            if isinstance(event, ToolCallRequest):
                calls = tuple(c.model_copy(update={"arguments": args}) if c.id == call_id else c for c in event.calls)
                event = event.model_copy(update={"calls": calls})
                for call in calls:
                    outputs[call.id] = env.call(call.id, call.name, call.arguments)
                    if call.id == call_id and outputs[call.id].is_error:
                        return None  # the other record refuses this write: not a wrong write
            elif isinstance(event, ToolResult):
                event = event.model_copy(update={"results": tuple(outputs[r.call_id] for r in event.results)})
            transcript.append(event)
        state_hash, state_diff = env.final_state()
    finally:
        env.close()
    return ended.model_copy(
        update={"transcript": tuple(transcript), "state_hash": state_hash, "state_diff": state_diff}
    )


def hide_refusal(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The user asked for something the rules forbid; the assistant's "I couldn't do that" is
    reworded so the user is never told no (the call still failed, nothing was written)."""
    if not any(g.expect == "refused" for _, g in example.rubrics[ended.task_id].gold_calls):
        return None
    transcript, changed = list(ended.transcript), False
    for i, message in _assistant_messages(ended):
        if REFUSAL_RE.search(message.content):
            content = REFUSAL_RE.sub("have handled", message.content)
            transcript[i] = message.model_copy(update={"content": content})
            changed = True
    return ended.model_copy(update={"transcript": tuple(transcript)}) if changed else None


# --- conduct: consent, refusals, raw errors, repeats, leaks ---------------------------------------
def _consents(ended: SessionEnded, example: Example) -> Iterator[tuple[int, int, int, ToolCall]]:
    """(read-back, agreement, call) indices of every write made after a read-back and a yes."""
    for w, call in _successful_writes(ended, example):
        t = ended.transcript
        u = next((k for k in range(w - 1, -1, -1) if isinstance(t[k], UserMessage)), None)
        if u is None:
            continue
        a = next((k for k in range(u - 1, -1, -1) if isinstance(t[k], AssistantMessage)), None)
        if a is not None and "?" in t[a].content:  # type: ignore[union-attr]
            yield a, u, w, call


def _drop(ended: SessionEnded, *indices: int) -> SessionEnded:
    return ended.model_copy(update={"transcript": tuple(e for k, e in enumerate(ended.transcript) if k not in indices)})


def _insert(ended: SessionEnded, at: int, *events: BaseEvent) -> SessionEnded:
    t = list(ended.transcript)
    return ended.model_copy(update={"transcript": tuple(t[:at] + list(events) + t[at:])})


def drop_consent(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The read-back and the user's yes before a write are gone: the write follows the request."""
    for a, u, _, _ in _consents(ended, example):
        return _drop(ended, a, u)
    return None


VAGUE_READBACKS = [
    "Shall I go ahead with that?",
    "Want me to do it?",
    "Okay to proceed?",
    "I can take care of that now, okay?",
    "Should I make the change?",
    "Do you want me to go ahead?",
    "Alright, shall I do it then?",
]


def vague_readback(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The assistant asks leave without saying what it will do."""
    for a, _, _, _ in _consents(ended, example):
        message = ended.transcript[a]
        return _replace(ended, a, message.model_copy(update={"content": rng.choice(VAGUE_READBACKS)}))
    return None


NOT_AGREED = [
    "No, hold on a second.",
    "Wait, let me think about it.",
    "Hmm, not yet.",
    "Don't do that, please.",
    "Hang on, I need to check something first.",
    "Let me get back to you on that.",
    "I'd rather not, actually.",
]


def consent_withheld(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The user does not agree, and the write is made anyway."""
    for _, u, _, _ in _consents(ended, example):
        message = ended.transcript[u]
        return _replace(ended, u, message.model_copy(update={"content": rng.choice(NOT_AGREED)}))
    return None


def changed_after_consent(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The write stores another value than the one read back and agreed to (re-run, so outputs agree)."""
    for _, _, _, call in _consents(ended, example):
        tool = example.domain.tools[call.name]
        written = sorted(k for k in written_parameters(tool.sql or "") if k in call.arguments)
        if not written or not isinstance(call.arguments, dict):
            continue
        name = written[0]
        taken = _session_text(ended) + example.domain.policy
        for _ in range(6):
            other = _other_value(call.arguments[name], example, taken, rng)
            corrupted = _rerun(ended, example, call.id, {**call.arguments, name: other})
            if corrupted is not None:
                return corrupted
    return None


def _refused(ended: SessionEnded, example: Example) -> list[ToolRequest]:
    return [g for _, g in example.rubrics[ended.task_id].gold_calls if g.expect == "refused"]


def _refusal_at(ended: SessionEnded) -> int | None:
    return next((i for i, m in _assistant_messages(ended) if REFUSAL_RE.search(m.content)), None)


def _said_by(anchor: BaseEvent, role: str, content: str) -> BaseEvent:
    """A message by `role` ("user" or "assistant") placed at the anchor's turn."""
    kind: type[UserMessage | AssistantMessage] = UserMessage if role == "user" else AssistantMessage
    other = "assistant" if role == "user" else "user"
    return kind(
        id=f"{anchor.id}-{role}-{abs(hash(content)) % 10**8}",
        session_id=anchor.session_id,
        turn=anchor.turn,
        sender=role,
        recipient=other,
        content=content,
    )


def attempt_forbidden(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """Before refusing, the assistant calls the forbidden write (it fails on the real database)."""
    refused, at = _refused(ended, example), _refusal_at(ended)
    if not refused or at is None:
        return None
    gold = refused[0]
    env = example.domain.new_session()
    try:
        output = env.call("call_forbidden", gold.tool, gold.args)
    finally:
        env.close()
    anchor = ended.transcript[at]
    request = ToolCallRequest(
        id=f"{anchor.id}-forbidden-call",
        session_id=anchor.session_id,
        turn=anchor.turn,
        sender="assistant",
        recipient="tool_executor",
        calls=(ToolCall(id="call_forbidden", name=gold.tool, arguments=gold.args),),
    )
    result = ToolResult(
        id=f"{anchor.id}-forbidden-result",
        session_id=anchor.session_id,
        turn=anchor.turn,
        sender="tool_executor",
        recipient="assistant",
        results=(output,),
    )
    return _insert(ended, at, request, result)


OFFERS = [
    "I can {verb} that for you: {what}. Shall I go ahead?",
    "Would you like me to {verb} it? That's {what}.",
    "Just to confirm, you want me to {verb} {what}? Should I proceed?",
    "Okay, I'll {verb} {what} - is that okay?",
]


def offer_forbidden(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """Before refusing, the assistant offers the forbidden change and the user agrees."""
    refused, at = _refused(ended, example), _refusal_at(ended)
    if not refused or at is None:
        return None
    gold = refused[0]
    anchor = ended.transcript[at]
    what = " and ".join(f"{label(k)} {render_value(v)}" for k, v in gold.args.items())
    offer = rng.choice(OFFERS).format(verb=gold.tool.split("_")[0], what=what)
    return _insert(
        ended,
        at,
        _said_by(anchor, "assistant", offer),
        _said_by(anchor, "user", rng.choice(["Yes please.", "Sure, go ahead.", "Okay."])),
    )


REASONLESS = [
    "Sorry, I can't do that.",
    "Unfortunately that's not something I can do for you.",
    "I'm afraid I'm not able to help with that one.",
    "That isn't possible, sorry.",
    "I cannot do that for you.",
]


def reasonless_refusal(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The refusal says no and nothing about why."""
    at = _refusal_at(ended)
    if not _refused(ended, example) or at is None:
        return None
    return _replace(ended, at, ended.transcript[at].model_copy(update={"content": rng.choice(REASONLESS)}))


def parrot_error(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """After a tool error, the assistant repeats the database's message to the user."""
    for i, event in enumerate(ended.transcript):
        if not isinstance(event, ToolResult):
            continue
        for r in event.results:
            if r.is_error and isinstance(r.output, dict):
                after = next((k for k, _ in _assistant_messages(ended) if k > i), None)
                if after is None:
                    return None
                error = str(r.output["error"])
                frame = rng.choice(
                    ["Error: {e}.", "The system says: {e}.", "Hmm, it came back with '{e}'.", "Sorry - {e}!"]
                ).format(e=error)
                message = ended.transcript[after]
                return _replace(ended, after, message.model_copy(update={"content": f"{frame} {message.content}"}))
    return None


def repeat_message(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A user or assistant message is sent twice in a row."""
    messages = [i for i, e in enumerate(ended.transcript) if isinstance(e, UserMessage | AssistantMessage) and i > 0]
    i = rng.choice(messages)
    return _insert(ended, i + 1, ended.transcript[i].model_copy(update={"id": f"{ended.transcript[i].id}-again"}))


def repeat_write(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A successful write is made once more with the same arguments."""
    for w, call in _successful_writes(ended, example):
        results = next(k for k in range(w + 1, len(ended.transcript)) if isinstance(ended.transcript[k], ToolResult))
        request, result = ended.transcript[w], ended.transcript[results]
        assert isinstance(request, ToolCallRequest) and isinstance(result, ToolResult)
        again = ToolCall(id=f"{call.id}-again", name=call.name, arguments=call.arguments)
        output = next(r for r in result.results if r.call_id == call.id).model_copy(update={"call_id": again.id})
        return _insert(
            ended,
            results + 1,
            request.model_copy(update={"calls": (again,), "id": f"{request.id}-a"}),
            result.model_copy(update={"results": (output,), "id": f"{result.id}-a"}),
        )
    return None


def leak_task(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The user reads out its task (goal or a sub-goal), or the assistant quotes the validator's rubric."""
    started = next(e for e in ended.transcript if isinstance(e, SessionStarted))
    texts = [started.task.goal, *(s.description for s in started.task.subgoals)]
    long_texts = [t for t in texts if len(t.split()) >= 12]  # a shorter one is a request like any other
    if long_texts and rng.random() < 0.6:
        i = next(k for k, e in enumerate(ended.transcript) if isinstance(e, UserMessage))
        text = rng.choice(long_texts)
        framed = rng.choice(["My task: {t}", "{t}", "So, the goal here is: {t}", "({t})"]).format(t=text)
    else:
        i = next(k for k, _ in _assistant_messages(ended))
        framed = rng.choice(
            [
                "Per the rubric, I need to tell you this.",
                "The expected_diff says the order changes.",
                "That covers your second sub-goal.",
                "According to the gold calls this is right.",
            ]
        )
    message = ended.transcript[i]
    return _replace(ended, i, message.model_copy(update={"content": f"{message.content} {framed}"}))


def disclose_other(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A lookup lands on another person's record (re-run, so its output is that record), and the
    assistant tells the user what it holds."""
    owners = example.domain.record_owners
    assert owners is not None
    for i, event in enumerate(ended.transcript):
        if not isinstance(event, ToolCallRequest):
            continue
        call = event.calls[0]
        tool = example.domain.tools[call.name]
        if tool.kind != "read" or not isinstance(call.arguments, dict) or not owners.owners(call.arguments):
            continue
        mine = owners.owners(call.arguments)
        for key in sorted(call.arguments):
            pool = sorted(
                {row[key] for rows in example.domain.snapshot.values() for row in rows if row.get(key) is not None},
                key=str,
            )
            rng.shuffle(pool)
            for other in pool[:10]:
                theirs = owners.owners({key: other})
                if not theirs or theirs & mine:
                    continue
                corrupted = _rerun(ended, example, call.id, {**call.arguments, key: other})
                if corrupted is None:
                    continue
                result = next(
                    e for e in corrupted.transcript[i:] if isinstance(e, ToolResult) and e.results[0].call_id == call.id
                )
                rows = result.results[0].output
                row = rows[0] if isinstance(rows, list) and rows else rows
                known = _session_text(ended).casefold()  # a value the user's own records hold too is no secret
                said = [
                    f"the {label(k)} is {spoken_value(v)}"
                    for k, v in sorted(row.items() if isinstance(row, dict) else [])
                    if isinstance(v, str) and len(v) > 3 and v.casefold() not in known
                ]
                at = next((k for k, _ in _assistant_messages(corrupted) if k > i), None)
                if not said or at is None:
                    continue
                message = corrupted.transcript[at]
                return _replace(
                    corrupted, at, message.model_copy(update={"content": f"{message.content} Also, {said[0]}."})
                )
    return None


_DATE_FORMS = ["{month} {day}, {year}", "{day} {month} {year}", "{iso}", "{day}th of {month}", "{mon} {day}"]


def _say_date(day: date, rng: random.Random) -> str:
    form = rng.choice(_DATE_FORMS)
    month = day.strftime("%B")
    return form.format(month=month, mon=month[:3], day=day.day, year=day.year, iso=day.isoformat())


def _day(spoken: str) -> date:
    iso = iso_date(spoken)
    assert iso is not None
    return date.fromisoformat(iso)


def _spoken_dates(ended: SessionEnded) -> Iterator[tuple[int, AssistantMessage, re.Match[str], date]]:
    for i, message in _assistant_messages(ended):
        for m in re.finditer(SPOKEN_DATE, message.content):
            iso = iso_date(m.group(0))
            if iso is not None:
                yield i, message, m, date.fromisoformat(iso)


def shift_date(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """A date the assistant states is moved by a few days (in any of the usual forms): its day and
    month numbers may well appear elsewhere in the session, the date does not."""
    text = _session_text(ended)
    for i, message, m, day in _spoken_dates(ended):
        for shift in (2, -3, 5, -6):
            other = day + timedelta(days=shift)
            if other.isoformat() not in text and (spoken := _say_date(other, rng)):
                content = message.content[: m.start()] + spoken + message.content[m.end() :]
                return _replace(ended, i, message.model_copy(update={"content": content}))
    return None


def test_a_date_said_in_any_form_is_grounded_by_the_date_it_was_told(examples: list[Example]) -> None:
    """The same sessions with every stated date reworded (16 May 2026, 2026-05-16, 16th of May,
    May 16) are still accepted: dates are compared as dates, not as strings."""
    rng = random.Random(4)
    reworded = 0
    for example in examples:
        for ended in example.sessions[:CORRUPTED]:
            transcript = list(ended.transcript)
            for i, message, _, _ in list(_spoken_dates(ended)):
                content = re.sub(
                    SPOKEN_DATE,
                    lambda m: _say_date(date.fromisoformat(iso_date(m.group(0)) or ""), rng),
                    message.content,
                )
                transcript[i] = message.model_copy(update={"content": content})
                reworded += 1
            changed = ended.model_copy(update={"transcript": tuple(transcript)})
            reasons, _ = judge(changed, example.rubrics[ended.task_id], example.checks)
            assert reasons == [], (ended.session_id, reasons)
    print(f"{reworded} messages with dates reworded, all still accepted")
    assert reworded >= 30


CLAIMS = [
    "There's no extra charge for that.", "You'll get a full refund for it.", "It has already shipped.",
    "We can offer you a discount on your next order.", "Delivery is free of charge.", "Your order has been dispatched.",
    "That comes with a money-back guarantee.", "It's been delivered.", "Your line is suspended.",
    "There are no additional fees.", "Your device is insured.", "It was refunded yesterday.",
]  # fmt: skip


def unsupported_claim(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """The assistant adds a claim no tool output (nor, for terms, the policy) supports."""
    outputs = json.dumps([r.output for e in ended.transcript if isinstance(e, ToolResult) for r in e.results]).lower()
    supported = outputs + example.domain.policy.lower()
    unsupported = [c for c in CLAIMS if not any(w in supported for w in re.findall(r"[a-z]{5,}", c.lower())[-1:])]
    if not unsupported:
        return None
    claim = rng.choice(unsupported)
    i, message = rng.choice(list(_assistant_messages(ended)))
    return _replace(ended, i, message.model_copy(update={"content": f"{message.content} {claim}"}))


READBACK_WORDINGS = [
    "So my {label} is now {value}, correct?", "Just to confirm, the {label} was changed to {value}?",
    "And the {label} has been updated to {value}, right?", "Just to double-check: your {label} is now {value}?",
    "So the {label} reads {value} now, yes?", "Is that right, the {label} was set to {value}?",
]  # fmt: skip


def _next_user(ended: SessionEnded, after: int) -> int | None:
    return next(
        (k for k in range(after + 1, len(ended.transcript)) if isinstance(ended.transcript[k], UserMessage)), None
    )


def _changed_fields(call: ToolCall, example: Example) -> list[str]:
    written = written_parameters(example.domain.tools[call.name].sql or "")
    return [k for k in sorted(call.arguments) if k in written] if isinstance(call.arguments, dict) else []


def reworded_readback(ended: SessionEnded, example: Example, rng: random.Random) -> SessionEnded | None:
    """After a change, the user reads back a wrong value in its own words (as an LLM user would)."""
    for i, call in _successful_writes(ended, example):
        after = next(
            (k for k in range(i + 1, len(ended.transcript)) if isinstance(ended.transcript[k], UserMessage)), None
        )
        fields = _changed_fields(call, example)
        if after is None or not fields:
            continue
        assert isinstance(call.arguments, dict)
        taken = _session_text(ended) + example.domain.policy
        wrong = _other_value(call.arguments[fields[0]], example, taken, rng)
        line = rng.choice(READBACK_WORDINGS).format(label=label(fields[0]), value=render_value(wrong))
        message = ended.transcript[after]
        assert isinstance(message, UserMessage)
        return _replace(ended, after, message.model_copy(update={"content": f"{line} {message.content}"}))
    return None


def test_a_right_read_back_in_any_wording_is_accepted(examples: list[Example]) -> None:
    """The same read-backs with the value the write stored pass, however they are worded."""
    rng = random.Random(12)
    said = 0
    for example in examples:
        for ended in example.sessions[:CORRUPTED]:
            for i, call in _successful_writes(ended, example):
                after = next(
                    (k for k in range(i + 1, len(ended.transcript)) if isinstance(ended.transcript[k], UserMessage)),
                    None,
                )
                fields = _changed_fields(call, example)
                if after is None or not fields:
                    continue
                assert isinstance(call.arguments, dict)
                value = render_value(call.arguments[fields[0]])
                line = rng.choice(READBACK_WORDINGS).format(label=label(fields[0]), value=value)
                message = ended.transcript[after]
                changed = _replace(ended, after, message.model_copy(update={"content": f"{line} {message.content}"}))
                reasons, _ = judge(changed, example.rubrics[ended.task_id], example.checks)
                assert [r for r in reasons if r.code == "readback_mismatch"] == [], (line, reasons)
                said += 1
                break
    print(f"{said} right read-backs in other wordings, all accepted")
    assert said >= 30


CONDUCT_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "drop_consent": (drop_consent, "write_without_confirmation"),
    "vague_readback": (vague_readback, "write_without_confirmation"),
    "consent_withheld": (consent_withheld, "write_without_confirmation"),
    "changed_after_consent": (changed_after_consent, "write_without_confirmation"),
    "attempt_forbidden": (attempt_forbidden, "forbidden_write_attempted"),
    "offer_forbidden": (offer_forbidden, "forbidden_write_attempted"),
    "reasonless_refusal": (reasonless_refusal, "refusal_without_reason"),
    "parrot_error": (parrot_error, "raw_tool_error"),
    "repeat_message": (repeat_message, "duplicate_turn"),
    "repeat_write": (repeat_write, "duplicate_turn"),
    "leak_task": (leak_task, "private_text_leaked"),
    "disclose_other": (disclose_other, "other_party_disclosed"),
    "unsupported_claim": (unsupported_claim, "unsupported_claim"),
}


SESSION_MUTATIONS: dict[str, tuple[Mutation, str]] = {
    "swap_value": (swap_value, "ungrounded_value"),
    "truncate_value": (truncate_value, "ungrounded_value"),
    "drop_fact": (drop_fact, "fact_missing"),
    "inject_placeholder": (inject_placeholder, "unresolved_placeholder"),
    "tamper_output": (tamper_output, "tool_output_mismatch"),
    "confirm_unrequested": (confirm_unrequested, "readback_mismatch"),
    "reworded_readback": (reworded_readback, "readback_mismatch"),
    "wrong_row": (wrong_row, "state_mismatch"),
    "hide_refusal": (hide_refusal, "refusal_not_told"),
    "shift_date": (shift_date, "ungrounded_value"),
    **CONDUCT_MUTATIONS,
}


def _row(example: Example, ended: SessionEnded) -> dict[str, Any]:
    return {
        "messages": openai_messages(example.domain.policy, ended.transcript),
        "tools": example.domain.openai_tools(),
    }


def test_the_validator_catches_at_least_99_percent_of_corruptions_and_rejects_no_clean_session(
    examples: list[Example],
) -> None:
    rng = random.Random(2026)
    false_rejections: list[tuple[str, list[str]]] = []
    made: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    missed: list[tuple[str, str, list[str]]] = []
    for example in examples:
        assert len(example.sessions) >= 160, f"{example.name}: too few accepted sessions"
        for n, ended in enumerate(example.sessions):
            reasons, _ = judge(ended, example.rubrics[ended.task_id], example.checks)
            if reasons:
                false_rejections.append((ended.session_id, [r.code for r in reasons]))
            if n >= CORRUPTED and not _refused(ended, example):
                continue  # the first sessions, and every one whose task expects a refusal (they are rarer)
            for kind, (mutate, code) in SESSION_MUTATIONS.items():
                corrupted = mutate(ended, example, rng)
                if corrupted is None:
                    continue
                assert corrupted != ended, kind
                made[kind] += 1
                codes = [r.code for r in judge(corrupted, example.rubrics[ended.task_id], example.checks)[0]]
                if code in codes:
                    caught[kind] += 1
                else:
                    missed.append((kind, ended.session_id, codes))
        # dataset rows: a clean pass, then rows without the system prompt and duplicates
        rows = RowChecks(example.domain.policy)
        for ended in example.sessions:
            row_reasons = rows.check(ended.session_id, _row(example, ended))
            if row_reasons:
                false_rejections.append((ended.session_id, [r.code for r in row_reasons]))
        for ended in example.sessions[:CORRUPTED]:
            row = _row(example, ended)
            for kind, corrupted, code in (
                ("drop_system_prompt", {**row, "messages": row["messages"][1:]}, "missing_system_prompt"),
                ("duplicate_exact", row, "duplicate"),
                ("duplicate_renamed", _renamed(row, rng), "duplicate"),
            ):
                made[kind] += 1
                codes = [r.code for r in rows.check(f"{ended.session_id}-copy", corrupted)]
                if code in codes:
                    caught[kind] += 1
                else:
                    missed.append((kind, ended.session_id, codes))
    total, hits = sum(made.values()), sum(caught.values())
    print(f"\nmutation test: {hits}/{total} corruptions caught with the right code ({hits / total:.1%})")
    for kind in made:
        print(f"  {kind:20} {caught[kind]:4}/{made[kind]}")
    clean = sum(len(e.sessions) for e in examples)
    print(f"  false rejections: {len(false_rejections)} of {clean} clean sessions (and their rows)")
    assert false_rejections == [] and clean >= 500
    assert total >= 300
    assert set(made) == set(SESSION_MUTATIONS) | {"drop_system_prompt", "duplicate_exact", "duplicate_renamed"}
    assert all(made[k] >= 10 for k in made), made
    assert hits / total >= 0.99, missed[:10]


def _renamed(row: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """The same dialogue under another session: every tool-call id replaced."""
    suffix = f"-{rng.randrange(10**6)}"
    ids = {c["id"]: c["id"] + suffix for m in row["messages"] for c in m.get("tool_calls", [])}
    return {**row, "messages": rename_call_ids(row["messages"], ids)}


def test_each_session_corruption_changes_only_what_it_claims(examples: list[Example]) -> None:
    """A corruption must be a real one: it changes the session, and a clean copy still passes."""
    rng = random.Random(7)
    example = examples[0]
    ended = example.sessions[0]
    for kind, (mutate, _) in SESSION_MUTATIONS.items():
        corrupted = mutate(ended, example, rng)
        if corrupted is not None:
            assert corrupted.transcript != ended.transcript, kind
    assert judge(ended, example.rubrics[ended.task_id], example.checks)[0] == []


def test_the_same_corruptions_are_caught_through_convosim_judge(examples: list[Example], tmp_path: Path) -> None:
    """The entry point a user has: sessions as exported rows (OpenAI chat format + task id), judged
    by `convosim judge`, which re-executes every call on a fresh database. Every third corrupted
    session of each example (and of those whose task expects a refusal), clean and corrupted."""
    rng = random.Random(99)
    made: Counter[str] = Counter()
    caught: Counter[str] = Counter()
    false_rejections = 0
    for example in examples:
        rows: list[dict[str, Any]] = []
        expected: list[tuple[str, str | None]] = []  # (kind, code) per line; code None: clean
        refusals = [e for e in example.sessions[CORRUPTED:] if _refused(e, example)]
        for ended in example.sessions[:CORRUPTED:3] + refusals[::3]:
            rows.append(
                {"messages": openai_messages(example.domain.policy, ended.transcript), "task_id": ended.task_id}
            )
            expected.append(("clean", None))
            for kind, (mutate, code) in SESSION_MUTATIONS.items():
                corrupted = mutate(ended, example, rng)
                if corrupted is not None:
                    messages = openai_messages(example.domain.policy, corrupted.transcript)
                    rows.append({"messages": messages, "task_id": ended.task_id})
                    expected.append((kind, code))
        path = tmp_path / f"{example.name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        out = tmp_path / f"{example.name}.verdicts.jsonl"
        args = ["judge", str(example.domain.root), str(path), "--tasks", str(example.tasks), "--out", str(out)]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 1, result.output  # some rows are rejected
        verdicts = [json.loads(line) for line in out.read_text().splitlines()]
        assert len(verdicts) == len(rows)
        for (kind, code), verdict in zip(expected, verdicts, strict=True):
            codes = {r["code"] for r in verdict["reasons"]}
            if code is None:
                false_rejections += bool(codes)
                continue
            made[kind] += 1
            caught[kind] += code in codes
    total, hits = sum(made.values()), sum(caught.values())
    print(
        f"\nthrough convosim judge: {hits}/{total} corruptions caught ({hits / total:.1%}), "
        f"{false_rejections} clean rows rejected"
    )
    for kind in made:
        print(f"  {kind:22} {caught[kind]:4}/{made[kind]}")
    assert false_rejections == 0
    assert total >= 300 and all(made[k] >= 5 for k in SESSION_MUTATIONS), made
    assert hits / total >= 0.99
