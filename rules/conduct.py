"""How the assistant acted, not only which facts it stated: consent, refusals, errors, repeats, leaks.

A model fine-tuned on accepted dialogues copies their conduct. These checks read only the recorded
transcript (and the domain's declared rules), so they hold whoever played the roles and however
they worded it: values match in any format (`fact_told`), agreement and refusal are recognised by
open word classes, not by the offline roles' phrasing. Each reason carries its evidence: the index
of the event in the transcript (`event`), its turn, and the words or values it points at.

The word classes are documented in the README's validator table; what they cannot see (a consent
given in a language other than English, say) is a limit of this offline check, not a licence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from convosim.environments.record_owners import RecordOwners
from convosim.environments.sql_checks import written_parameters
from convosim.messages import (
    AssistantMessage,
    BaseEvent,
    Reason,
    SessionStarted,
    ToolCall,
    ToolCallRequest,
    ToolResult,
    UserMessage,
)
from convosim.models import Ref, Rubric, ToolRequest, ToolSpec
from convosim.rules.behaviours import REFUSAL_RE, declines
from convosim.rules.grounding import fact_told

# A user agreeing to a proposed change, in any of the usual words.
AGREE = re.compile(
    r"\b(?:yes|yeah|yep|yup|sure|ok|okay|go ahead|please do|do it|do that|proceed|confirm(?:ed)?|correct"
    r"|that's (?:right|fine|correct|good)|sounds (?:good|right|fine)|absolutely|of course|alright|all right"
    r"|by all means|make it so|carry on|go on|affirmative|fine by me|please go ahead)\b",
    re.IGNORECASE,
)
# ... and not agreeing: a no, a hesitation, a correction.
DISAGREE = re.compile(
    r"\b(?:no|nope|don't|do not|cancel|stop|wait|hold on|hang on|never ?mind|should be|rather not|not yet)\b",
    re.IGNORECASE,
)
# The assistant asking leave to act.
OFFER = re.compile(
    r"\b(?:shall i|should i|do you want me to|would you like me to|can i go ahead|go ahead|proceed"
    r"|is that (?:ok|okay|right|correct|alright)|does that sound right|want me to|ok to|okay to)\b",
    re.IGNORECASE,
)
# Words that carry no reason on their own.
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "for",
        "is",
        "are",
        "be",
        "can",
        "can't",
        "cannot",
        "only",
        "not",
        "no",
        "it",
        "its",
        "this",
        "that",
        "with",
        "on",
        "in",
        "at",
        "by",
        "from",
        "has",
        "have",
        "been",
        "was",
        "were",
        "which",
        "who",
        "what",
        "when",
        "any",
        "all",
    ]
)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_NUMBER = re.compile(r"(?<![\w.])-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?")


def at_event(code: str, events: list[BaseEvent], i: int, **detail: Any) -> Reason:
    """A reason with its evidence: the event's index in the transcript, its turn, and `detail`."""
    return Reason(code=code, detail={"event": i, "turn": events[i].turn, **detail})


def _calls(events: list[BaseEvent]) -> Iterator[tuple[int, ToolCallRequest, ToolCall]]:
    for i, event in enumerate(events):
        if isinstance(event, ToolCallRequest):
            for call in event.calls:
                yield i, event, call


def _errors(events: list[BaseEvent]) -> dict[str, str]:
    return {
        r.call_id: str(r.output.get("error") if isinstance(r.output, dict) else r.output)
        for e in events
        if isinstance(e, ToolResult)
        for r in e.results
        if r.is_error
    }


def _last(events: list[BaseEvent], before: int, kind: type[BaseEvent]) -> int | None:
    return next((k for k in range(before - 1, -1, -1) if isinstance(events[k], kind)), None)


def record_keys(tool: ToolSpec, args: dict[str, Any]) -> dict[str, Any]:
    """The arguments that pick the record a write changes: those it does not store."""
    stored = written_parameters(tool.sql) if tool.sql else frozenset()
    return {k: v for k, v in args.items() if k not in stored}


# --- consent -------------------------------------------------------------------------------------
def check_consent(events: list[BaseEvent], tools: dict[str, ToolSpec]) -> list[Reason]:
    """`write_without_confirmation`: every write is preceded, after the last change of its
    arguments, by the assistant saying what it will do (every argument's value, as a question) and
    the user's agreement, with nothing but tool traffic in between."""
    reasons = []
    for i, _, call in _calls(events):
        tool = tools.get(call.name)
        if tool is None or tool.kind != "write" or not tool.confirm or not isinstance(call.arguments, dict):
            continue
        problem, evidence, at = _consent_problem(events, i, call)
        if problem:
            reasons.append(
                at_event(
                    "write_without_confirmation", events, i,
                    tool=call.name, call_id=call.id, problem=problem, evidence=evidence, at=at,
                )
            )  # fmt: skip
    return reasons


def _consent_problem(events: list[BaseEvent], at: int, call: ToolCall) -> tuple[str | None, Any, int | None]:
    assert isinstance(call.arguments, dict)
    u = _last(events, at, UserMessage)
    if u is None:
        return "no user message before the write", None, None
    said = events[u]
    assert isinstance(said, UserMessage)
    if not AGREE.search(said.content) or DISAGREE.search(said.content):
        return "the user did not agree to it", said.content[:160], u
    a = _last(events, u, AssistantMessage)
    if a is None:
        return "nothing was read back before the user's agreement", None, u
    asked = events[a]
    assert isinstance(asked, AssistantMessage)
    unstated = [f"{k}={v!r}" for k, v in call.arguments.items() if not fact_told(v, asked.content)]
    if unstated:
        return "the read-back before the agreement does not state the call's values", unstated, a
    if "?" not in asked.content:
        return "the assistant did not ask before acting", asked.content[:160], a
    return None, None, None


# --- refusals ------------------------------------------------------------------------------------
def _reason_words(tool: ToolSpec, policy: str) -> set[str]:
    rule = tool.precondition
    if rule is not None:
        words = {w for w in _WORD.findall(rule.reason.lower()) if w not in _STOP and len(w) > 3}
        return words | {str(v).lower() for v in rule.allowed}
    # no declared rule: a reason is at least a word of the policy's sentences about this action
    verb = tool.name.split("_")[0]
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", policy) if verb in s.lower()]
    return {w for s in sentences for w in _WORD.findall(s.lower()) if w not in _STOP and len(w) > 3} - {verb}


def _shown(events: list[BaseEvent], keys: dict[str, Any], field: str) -> set[str]:
    """Every value a tool showed for `field` on the record `keys` pick."""
    out = set()
    for e in events:
        if not isinstance(e, ToolResult):
            continue
        for r in e.results:
            for row in r.output if isinstance(r.output, list) else [r.output]:
                if (
                    isinstance(row, dict)
                    and field in row
                    and any(k in row for k in keys)
                    and all(str(row[k]) == str(v) for k, v in keys.items() if k in row)
                ):
                    out.add(str(row[field]).lower())
    return out


def check_refusals(events: list[BaseEvent], rubric: Rubric, tools: dict[str, ToolSpec], policy: str) -> list[Reason]:
    """`forbidden_write_attempted`: a change the task expects to be refused is offered or called.
    `refusal_without_reason`: an assistant message says no to a request (other than a report of a
    failed call) without the rule's reason: a word of the declared reason, the value the rule
    allows, or the value the record shows (without a declared rule, a word of the policy's
    sentences about that action). A session that never says no is `refusal_not_told`."""
    reasons = []
    refused = [g for _, g in rubric.gold_calls if g.expect == "refused"]
    for gold in refused:
        tool = tools.get(gold.tool)
        if tool is None:
            continue
        keys = record_keys(tool, gold.args)
        reasons += _attempts(events, tool, gold, keys)
        because = _reason_words(tool, policy)
        if tool.precondition is not None:
            because |= _shown(events, keys, tool.precondition.field)
        said_no = declines(events)
        unexplained = [(i, text) for i, text in said_no if not because & set(_WORD.findall(text.lower()))]
        if unexplained:
            at, text = unexplained[0]
            reasons.append(
                at_event(
                    "refusal_without_reason", events, at,
                    tool=gold.tool, args=gold.args, evidence=text[:200], reasons_accepted=sorted(because)[:12],
                )
            )  # fmt: skip
    return reasons


def _attempts(events: list[BaseEvent], tool: ToolSpec, gold: ToolRequest, keys: dict[str, Any]) -> list[Reason]:
    reasons = []
    for i, _, call in _calls(events):
        if (
            call.name == gold.tool
            and isinstance(call.arguments, dict)
            and all(call.arguments.get(k) == v for k, v in keys.items())
        ):
            reasons.append(
                at_event(
                    "forbidden_write_attempted", events, i, tool=call.name, call_id=call.id, evidence=call.arguments
                )
            )
    verb = tool.name.split("_")[0]
    for i, e in enumerate(events):
        if (
            isinstance(e, AssistantMessage)
            and OFFER.search(e.content)
            and verb in e.content.lower()
            and keys
            and all(fact_told(v, e.content) for v in keys.values())
            and not REFUSAL_RE.search(e.content)
        ):
            reasons.append(
                at_event("forbidden_write_attempted", events, i, tool=tool.name, offered=True, evidence=e.content[:200])
            )
    return reasons


def check_raw_errors(events: list[BaseEvent]) -> list[Reason]:
    """`raw_tool_error`: an assistant message repeats a tool's error text to the user instead of
    saying what it means (any part of the message of 12 characters or more)."""
    parts: list[tuple[str, str]] = []
    reasons = []
    errors = _errors(events)
    for i, event in enumerate(events):
        if isinstance(event, ToolResult):
            for r in event.results:
                if r.call_id in errors:
                    text = errors[r.call_id].lower()
                    parts += [(p.strip(), text) for p in re.split(r"[:;\n]", text) if len(p.strip()) >= 12]
        elif isinstance(event, AssistantMessage):
            found = sorted({p for p, _ in parts if p in event.content.lower()})
            if found:
                reasons.append(at_event("raw_tool_error", events, i, evidence=found))
    return reasons


# --- repeats and leaks ---------------------------------------------------------------------------
def _said(event: BaseEvent) -> str | None:
    if isinstance(event, UserMessage | AssistantMessage):
        return " ".join(event.content.split()).lower()
    if isinstance(event, ToolCallRequest):
        return json.dumps([[c.name, c.arguments] for c in event.calls], sort_keys=True)
    return None


def check_repeats(events: list[BaseEvent], tools: dict[str, ToolSpec]) -> list[Reason]:
    """`duplicate_turn`: a message or call said twice in a row by the same role (directly, or, for a
    message of 30 characters or more, with only the other side's reply between), or a write made
    again with the same arguments after it succeeded."""
    reasons = []
    last: dict[tuple[str, str], tuple[int, str]] = {}
    done_writes: set[str] = set()
    ok = {r.call_id for e in events if isinstance(e, ToolResult) for r in e.results if not r.is_error}
    previous_key: tuple[str, str] | None = None
    for i, event in enumerate(events):
        said = _said(event)
        if said is None:
            continue
        key = (event.sender, event.type)
        before = last.get(key)
        message = not isinstance(event, ToolCallRequest)  # a read may be made again when asked again
        if before is not None and before[1] == said and (previous_key == key or (message and len(said) >= 30)):
            reasons.append(at_event("duplicate_turn", events, i, same_as=before[0], evidence=said[:160]))
        if isinstance(event, ToolCallRequest):
            for call in event.calls:
                tool = tools.get(call.name)
                sig = json.dumps([call.name, call.arguments], sort_keys=True)
                if tool is not None and tool.kind == "write":
                    if sig in done_writes:
                        reasons.append(
                            at_event("duplicate_turn", events, i, evidence=f"{call.name} again", call_id=call.id)
                        )
                    if call.id in ok:
                        done_writes.add(sig)
        last[key] = (i, said)
        previous_key = key
    return reasons


_PRIVATE_TERMS = re.compile(
    r"\b(?:rubric|gold calls?|gold_calls|expected_state_hash|expected_diff|sub-?goals?|my task (?:is|says)"
    r"|my instructions|expect(?:ed)? to be told|expect: refused)\b",
    re.IGNORECASE,
)


def _shingles(text: str, values: frozenset[str], n: int = 8) -> set[tuple[str, ...]]:
    """Runs of `n` words with every value (a number, a word of an argument, a {slot}) made `*`:
    a request said with the task's values is the user's job, not a leak; the task's own words are."""
    words = ["*" if w in values or w[0].isdigit() or w.startswith("{") else w for w in _SLOT_WORD.findall(text.lower())]
    runs = (tuple(words[k : k + n]) for k in range(len(words) - n + 1))
    return {run for run in runs if sum(w != "*" for w in run) >= 6}


_SLOT_WORD = re.compile(r"\{[a-z0-9_]+\}|[a-z0-9]+(?:'[a-z]+)?")


def check_leaks(events: list[BaseEvent], public: str) -> list[Reason]:
    """`private_text_leaked`: a message quotes the task (its goal, context or sub-goal texts: six
    words in a row, six of them not values, that no public text holds) or names the validator's private terms."""
    started = next((e for e in events if isinstance(e, SessionStarted)), None)
    private: set[tuple[str, ...]] = set()
    values: frozenset[str] = frozenset()
    if started is not None:
        task = started.task
        args = [v for s in task.subgoals for r in s.requests for v in r.args.values() if Ref.parse(v) is None]
        values = frozenset(w for v in args for w in _WORD.findall(str(v).lower()))
        for text in (task.goal, task.context, *(s.description for s in task.subgoals)):
            private |= _shingles(text, values)
    private -= _shingles(public, values)
    reasons = []
    for i, event in enumerate(events):
        if not isinstance(event, UserMessage | AssistantMessage):
            continue
        quoted = private & _shingles(event.content, values)
        term = _PRIVATE_TERMS.search(event.content)
        if quoted or term:
            evidence = " ".join(sorted(quoted)[0]) if quoted else term.group(0) if term else ""
            reasons.append(at_event("private_text_leaked", events, i, by=event.sender, evidence=evidence))
    return reasons


# --- privacy -------------------------------------------------------------------------------------
def _rows(output: Any) -> list[dict[str, Any]]:
    return [r for r in (output if isinstance(output, list) else [output]) if isinstance(r, dict)]


def _personal(value: Any) -> bool:
    """A value that says something about a person's record: text, an amount, a large id; not a
    small count or flag that any record may share."""
    if isinstance(value, bool) or value is None:
        return False
    if isinstance(value, str):
        return len(value.strip()) >= 3
    if isinstance(value, float):
        return not value.is_integer()
    return isinstance(value, int) and abs(value) >= 1000


def check_disclosure(events: list[BaseEvent], rubric: Rubric, owners: RecordOwners) -> list[Reason]:
    """`other_party_disclosed`: a value of a record that belongs to someone other than the session's
    user reaches the user. The user is whoever owns the records the task is about (its gold calls'
    arguments and outputs); a value the user's own records or the catalog also hold, or that the
    user said, is not a disclosure."""
    gold = {(g.tool, json.dumps(g.args, sort_keys=True)) for _, g in rubric.gold_calls}
    user: set[Any] = set()
    for _, g in rubric.gold_calls:
        user |= owners.owners(g.args)
    results = {r.call_id: r for e in events if isinstance(e, ToolResult) for r in e.results if not r.is_error}
    for _, _, call in _calls(events):
        if isinstance(call.arguments, dict) and (call.name, json.dumps(call.arguments, sort_keys=True)) in gold:
            for row in _rows(results[call.id].output) if call.id in results else []:
                user |= owners.owners(row)
    if not user:
        return []
    shared: set[str] = set()  # values of the user's own records and the catalog
    others: list[tuple[int, dict[str, Any]]] = []
    for i, event in enumerate(events):
        if isinstance(event, ToolResult):
            for r in event.results:
                for row in [] if r.is_error else _rows(r.output):
                    whose = owners.owners(row)
                    if whose and not whose & user:
                        others.append((i, row))
                    else:
                        shared |= {str(v).casefold() for v in row.values()}
    reasons = []
    said = ""
    for i, event in enumerate(events):
        if isinstance(event, UserMessage):
            said += "\n" + event.content
        elif isinstance(event, AssistantMessage):
            leaked = sorted(
                {
                    str(v)
                    for at, row in others
                    if at < i
                    for v in row.values()
                    if _personal(v)
                    and str(v).casefold() not in shared
                    and not fact_told(v, said)
                    and fact_told(v, event.content)
                }
            )
            if leaked:
                reasons.append(at_event("other_party_disclosed", events, i, evidence=leaked))
    return reasons


# --- claims without values -------------------------------------------------------------------------
# Statements of fact that carry no number, id or quoted value, so value grounding cannot see them.
# Each claim is supported only by text that says the same: `words` must appear in a tool output
# (status claims: what a record is), or in a tool output or the policy (terms: what the shop offers).
_STATUS_CLAIM = re.compile(
    r"\b(?:it|your (?:order|item|line|bill|device|return|account|appointment|booking|request)|that|this)"
    r"(?: has| had| is| was|'s)(?: already| now| just)?(?: been)? (?P<word>shipped|delivered|dispatched|cancell?ed"
    r"|refunded|paid|approved|processed|suspended|reactivated|activated|closed|completed|returned|insured)\b",
    re.IGNORECASE,
)
_TERMS_CLAIM = re.compile(
    r"\b(?P<word>no (?:extra |additional |hidden )?(?:charge|fee|cost)s?|free of charge|at no (?:extra )?cost"
    r"|(?:full |partial )?refund|compensation|(?:a |an )?discount|free (?:shipping|delivery|upgrade)"
    r"|(?:money[- ]back )?guarantee|warranty)\b",
    re.IGNORECASE,
)


def check_claims(events: list[BaseEvent], policy: str) -> list[Reason]:
    """`unsupported_claim`: the assistant states a record's status or the shop's terms in words no
    tool output (or, for terms, the policy) supports: "it has shipped" when no output says shipped,
    "there's no extra charge" when neither the policy nor an output speaks of charges."""
    outputs: list[str] = []
    reasons = []
    policy_text = policy.lower()
    for i, event in enumerate(events):
        if isinstance(event, ToolResult):
            outputs += [json.dumps(r.output).lower() for r in event.results if not r.is_error]
        elif isinstance(event, AssistantMessage):
            seen = "\n".join(outputs)
            bad = [
                m.group(0)
                for m in _STATUS_CLAIM.finditer(event.content)
                if m.group("word").lower().replace("canceled", "cancelled") not in seen
            ]
            bad += [
                m.group(0)
                for m in _TERMS_CLAIM.finditer(event.content)
                if not any(_key_word(m.group("word")) in text for text in (seen, policy_text))
            ]
            if bad:
                reasons.append(at_event("unsupported_claim", events, i, evidence=bad))
    return reasons


def _key_word(claim: str) -> str:
    """The word a supporting text must hold: charge/fee/cost, refund, discount, ..."""
    filler = {"no", "extra", "additional", "hidden", "a", "an", "free", "of", "at", "full", "partial", "money", "back"}
    words: list[str] = [w for w in _WORD.findall(claim.lower()) if w not in filler]
    return words[0].rstrip("s") if words else claim.lower()
