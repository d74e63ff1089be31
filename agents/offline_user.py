"""A deterministic user simulator that follows the behavioural rules.

It voices one or two sub-goals per message from the tools' phrasings (mixing phrasings, sometimes
leaving a value out so the assistant has to ask), reacts to every answer, sometimes slips on a
value and corrects it when the assistant reads the change back, learns values it needs later from
the assistant's answers, and ends with an explicit end marker only after every sub-goal has been
answered, including every confirmed change actually being reported as done.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from convosim.agents.offline_language import (
    ASK_RE,
    CANCELLED_RE,
    CONFIRM_RE,
    CORRECTION,
    ERROR_RE,
    NOT_DONE_RE,
    NOT_UNDERSTOOD_RE,
    READBACK,
    REFUSED_RE,
    confirmed_values,
    heard_values,
)
from convosim.agents.offline_lexicon import remark, sign_off
from convosim.agents.offline_speech import expand
from convosim.agents.policies import Intent, UserAction, UserObservation
from convosim.environments.phrasing import (
    ID_WORDINGS,
    REQUEST_OPENINGS,
    PhraseBook,
    Phrasing,
    convert,
    id_worded,
    label,
    record_noun,
    render_value,
    same_value,
    slot_pattern,
)
from convosim.environments.sql_checks import written_parameters
from convosim.models import Ref, ToolRequest, ToolSpec, UserTask
from convosim.rules.behaviours import REFUSAL_RE
from convosim.rules.user_rules import Persona, UserRules

# How this user words each move, by temperament and verbosity. Brackets are alternatives
# (`offline_speech.expand`); the assistant only needs the core forms of `offline_language`.
_GOOD = "[helpful|useful|clear|quick|kind|thorough|reassuring|efficient|handy|informative]"
_VERY = "[really|very|super|incredibly|ever so|most|truly|genuinely|remarkably|wonderfully]"
REACTIONS = {
    ("polite", "terse"): (
        "[Thanks|Thank you|Great, thanks|Perfect, thanks|Lovely|Cheers|Good to know, thanks|Much appreciated"
        "|Nice one, thanks|Ah, thank you|Brilliant, cheers|Many thanks|Wonderful, thanks|Splendid|Super, thanks][.|!]"
    ),
    ("polite", "verbose"): (
        "[Thank you so much|Thanks a lot|That's great|Wonderful|Oh, that's helpful|Brilliant|Lovely|Perfect"
        "|Excellent|Ah, good|Oh, nice|Fantastic|Marvellous|Great stuff|Many thanks][,|!|.] "
        f"[that's|that was|you've been|that's been] {_VERY} {_GOOD}[.|!] "
        "[|I appreciate [it|the detail|your patience|the quick reply|you checking|the clear answer]."
        "|That clears [it|things|everything] up [nicely|perfectly|for me]."
        "|Just what I [needed|wanted|hoped] to [hear|know].]"
    ),
    ("impatient", "terse"): "[OK|Fine|Got it|Right|Alright|Noted|Okay then|Understood|Hm, fine|Mm, okay|Fair][.|!]",
    ("impatient", "verbose"): (
        "[Alright|OK|Right|Fine|Well|Hmm|Okay][,|.] "
        "[that took [a while|ages|longer than I hoped|forever|some time]"
        "|that's [what I expected|about what I thought|as I feared|roughly what I guessed]"
        "|let's [keep going|move on|get on with it|press on|speed this up]|good, moving on|finally"
        "|I figured as much|[at last|about time][, thanks|]][.|!] "
        "[|[I'm|I am] [in a hurry|short on time|between meetings|on a lunch break|running late]"
        "[ today|, so be quick|].]"
    ),
}
GREETINGS = {
    "terse": "[Hi|Hello|Hey|Hi there|Good morning|Good afternoon|Good evening|Morning|Hiya|Hello there][.|!|,]",
    "verbose": (
        "[Hi there|Hello|Good morning|Good afternoon|Good evening|Hey|Hi|Hello there|Morning][,|!|.] "
        "[I hope you can help me|I need a hand with a few things|I've got a couple of questions"
        "|I could use some help today|I hope this is the right place|I have a few things to sort out"
        "|I was hoping you could help|I've been meaning to get in touch][.|!]"
    ),
}
_THANKS = "[thanks|thank you|many thanks|cheers]"
CLOSINGS = {
    "terse": (
        "[That's all|That's all I needed|Nothing else|That is all|That's all for today|That's everything"
        f"|I'm all set|That covers it|That's it for now][, {_THANKS}|][!|.]"
    ),
    "verbose": (
        "[That's all I needed today|That's all for now|That's all, really|Nothing else for today|That's all I wanted"
        "|That is all for today|That's everything I needed|I'm all set now|That covers it|That's it for today"
        f"|I think that's everything], {_THANKS} [for your help|so much|for sorting it out|for your patience|again"
        "|for [the|all the] [quick|kind|patient|friendly|clear|swift] [help|answers|service|support]][!|.] "
        "[[Have a|Enjoy the|Have a really] [nice|lovely|great|good|pleasant|relaxing|quiet] "
        "[day|afternoon|evening|week|weekend]!|Bye for now.|Take care.|Speak soon.|All the best.|]"
    ),
}
AFFIRM = {
    "terse": (
        "[Yes|Yeah|Yep|Sure|Yes please|Yes, exactly|Yep, spot on][,|.|!] "
        "[go ahead|please do|that's right|do it|that's correct|[go|carry] on with it|make it so|proceed][.|!]"
    ),
    "verbose": (
        "[Yes|Yeah|Sure|Yes indeed|Yes, exactly|Yes, absolutely][,|.|!] "
        "[that's right|that's correct|that's exactly it|[that's|it's] [spot on|what I want|what I meant|just it]]"
        "[, please go ahead|, go ahead with that|. Please do|, do it"
        "|, [please|] [carry on|proceed|make the change]][.|!] "
        "[Thanks.|Thank you.|Much appreciated.|Cheers.|]"
    ),
}
SUPPLY = {
    "terse": "[|Sure, |Right, |Ah, |Oh, |Okay, |Yes, ][it's|it is] {value}.",
    "verbose": (
        "[Sure|Of course|Certainly|Right|Ah, yes|Let me see|One moment|Okay|Absolutely|Yes][,|.]"
        "[| I have it [here|in front of me|on my screen].| I wrote it down.| I've got my receipt here."
        "| I found the email.] [it's|the {label} is] {value}."
    ),
}
CONNECTORS = [
    "Also, ",
    "And ",
    "Oh, and ",
    "Plus, ",
    "While you're at it, ",
    "Next, ",
    "And then ",
    "Besides that, ",
    "One more thing: ",
    "On top of that, ",
    "As well as that, ",
    "Then, ",
    "And while I have you, ",
    "Separately, ",
]
CHANGE_OF_MIND = (
    "[Actually|Hmm, wait|Sorry, wait|Oh, hold on|Hang on|Wait a moment|Thinking about it|Come to think of it], "
    "[I've changed my mind|I've reconsidered|I've had a rethink|I've thought it over|I've had second thoughts]"
    ": the {label} should be {value}."
)
ACCEPT_REFUSAL = (
    "[Oh well|Fair enough|I see|Understood|Ah, okay|Shame|Pity], "
    "[I thought that might be the case|that's a pity|never mind then|I half expected that|worth a try"
    "|I'll live with it|I suspected as much]."
)
WRONG_KEY = (
    "[Oh, sorry|Oops|My mistake|Sorry, my bad|Whoops|Oh dear|Apologies|Ah, silly me][,|.] "
    "I [gave you|told you|read out|typed] the wrong {label}"
    "[|, I was looking at [an old|another|the wrong] [receipt|email|note|letter]]: it's {value}."
)
COMPLAINT = (
    "[Hmm|Well|Sorry|Hold on|Wait][,|.] that's [not what I hoped for|not quite what I asked|not what I meant"
    "|not the answer I was after|not really it]."
)
NOT_SURE = (
    "[I'm not sure, sorry|I don't know that, sorry|Sorry, I don't have that to hand|I can't remember that, sorry"
    "|I'd have to look that up, sorry]."
)


def changed_parameters(tool: ToolSpec) -> frozenset[str]:
    """What a write changes: from its SQL; a tool without SQL (simulated) by its names."""
    if tool.sql:
        return written_parameters(tool.sql)
    return frozenset(n for n in tool.properties if not n.endswith("_id"))


def _mid_sentence(text: str) -> str:
    """A sentence continued after "Hi there," or "Also,": lower-case first letter, but "I" stays."""
    first = text.split(" ", 1)[0]
    return text if first == "I" or first.startswith("I'") else text[:1].lower() + text[1:]


def _misremembered(value: Any, schema: dict[str, Any]) -> Any:
    """An id or number misremembered (most likely naming no record at all), or None if this value
    is not one a person would misremember (free text, an email, a choice)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value + 7919
    if not isinstance(value, str) or "@" in value or "enum" in schema:
        return None
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    if not digits or not any(c.isdigit() for c in value[-4:]):
        return None  # an address or a name with a house number: not an identifier
    i = digits[-1]
    wrong = value[:i] + str((int(value[i]) + 5) % 10) + value[i + 1 :]
    return wrong if re.fullmatch(slot_pattern(schema), wrong) else None


@dataclass
class _InFlight:
    subgoal: int  # 1-based
    tool: ToolSpec
    args: dict[str, Any]  # the values the user means
    slip: tuple[str, Any] | None = None  # (param, wrong value) said instead of the right one
    mind_changed: bool = False  # the slip is a first choice the user will change its mind about
    expect_refusal: bool = False  # the task asks for something the rules forbid: an error is the answer
    wrong_key: tuple[str, Any] | None = None  # (param, wrong id) said by mistake in a read; put right after the answer
    phrasing: Phrasing | None = None


class OfflineUserPolicy:
    def __init__(self, book: PhraseBook, rules: UserRules, persona: Persona, seed: int) -> None:
        self.tools = book.tools
        self.rules = rules
        self.rng = random.Random(seed)
        self.book = book
        self.temperament = (
            persona.temperament if persona.temperament != "mixed" else self.rng.choice(["polite", "impatient"])
        )
        self.verbosity = persona.verbosity if persona.verbosity != "mixed" else self.rng.choice(["terse", "verbose"])
        self.slip_rate = persona.slip_rate
        # Behaviours this session will show once each, when the task gives the chance (persona rates).
        self.will_give_wrong_id = self.rng.random() < persona.wrong_id_rate
        self.will_change_mind = self.rng.random() < persona.change_of_mind_rate
        self.task: UserTask | None = None
        self.cursor: dict[int, int] = {}
        self.failed: set[int] = set()
        self.heard: dict[tuple[int, str], Any] = {}
        self.in_flight: list[_InFlight] = []
        self.misunderstandings = 0

    # --- the one policy method --------------------------------------------------------------
    async def act(self, observation: UserObservation) -> UserAction:
        if self.task is None:
            self.task = observation.task
            self.cursor = {k: 0 for k in range(1, len(self.task.subgoals) + 1)}
            opening = self._say(GREETINGS[self.verbosity])
            return self._next_request(prefix=opening)
        reply = observation.history[-1].text
        ask = ASK_RE.search(reply)
        confirm = CONFIRM_RE.search(reply)
        answered = self._answered(reply, ask, confirm)
        if answered and self.in_flight[0].wrong_key is not None:
            return self._put_right(self.in_flight[0])
        settled = self.in_flight[:answered]
        told_no = ERROR_RE.search(reply) is not None or REFUSED_RE.search(reply) is not None
        refused = told_no and bool(settled) and all(i.expect_refusal for i in settled)
        failed = ERROR_RE.search(reply) is not None and not refused
        self._learn(reply)
        changed = [i for i in settled if i.tool.kind == "write" and not i.expect_refusal]
        self._mark_answered(answered, failed=failed)
        if changed and not failed and not self.in_flight and not ask:
            readback = self._readback(changed[-1], reply)
            if readback is not None:
                return readback
        if ask:
            return self._supply(ask.group("label"))
        if confirm:
            return self._confirm(confirm)
        if NOT_UNDERSTOOD_RE.search(reply) and self.in_flight:
            self.misunderstandings += 1
            if self.misunderstandings >= self.rules.max_misunderstandings:
                return UserAction(content="This isn't working, I'll try again later.", done=True, end_reason="hopeless")
            for item in self.in_flight:
                item.slip = None  # not understood: say it again, carefully this time
            return UserAction(content=self._voice(self.in_flight, rephrase=True))
        if self.in_flight:
            # Something came back that does not settle our open requests: say so, and ask again.
            return UserAction(content=f"{self._say(COMPLAINT)} {self._voice(self.in_flight, rephrase=True)}")
        mood = REACTIONS[(self.temperament, self.verbosity)]
        prefix = self._say(COMPLAINT if failed else ACCEPT_REFUSAL if refused else mood)
        return self._next_request(prefix=prefix if self.rules.react_to_every_answer else "")

    async def voice(self, intent: Intent, observation: UserObservation) -> str:
        """A scripted intent in this user's words: a request through the domain's phrasings (with
        this user's openings), a yes or a goodbye as this persona says them."""
        if intent.move == "confirm":
            return self._say(AFFIRM[self.verbosity])
        if intent.move == "goodbye":
            return self._say(CLOSINGS[self.verbosity])
        tool = self.tools.get(intent.tool or "")
        if tool is None:
            raise ValueError(f"intent: {intent.tool!r} is not a tool of the domain")
        options = [p for p in self.book.by_tool[tool.name] if set(p.slots) == set(intent.args)]
        if not options:
            raise ValueError(f"intent: no phrasing of {tool.name} says exactly {sorted(intent.args)}")
        return self._render(self.rng.choice(options), intent.args)

    def _put_right(self, item: _InFlight) -> UserAction:
        """The answer was about a record we named by mistake: say so, and ask again with the right id
        (nothing is learnt from the wrong answer)."""
        assert item.wrong_key is not None
        name = item.wrong_key[0]
        item.wrong_key = None
        fix = self._say(WRONG_KEY, label=label(name), value=render_value(item.args[name]))
        return UserAction(content=f"{fix} {self._voice([item])}")

    def _say(self, pattern: str, **slots: Any) -> str:
        return expand(self.rng, pattern, **slots)

    def _answered(self, reply: str, ask: re.Match[str] | None, confirm: re.Match[str] | None) -> int:
        """How many of the open requests this reply settles. The assistant works through them in
        order: a question about one (a missing value, a change to confirm) means the ones before it
        were answered; a reply that neither asks nor says it could not follow settles them all."""
        if NOT_UNDERSTOOD_RE.search(reply) or CANCELLED_RE.search(reply) or NOT_DONE_RE.search(reply):
            return 0
        declined = ERROR_RE.search(reply) or REFUSED_RE.search(reply)
        if REFUSAL_RE.search(reply) and not declined and not ask and not confirm:
            # "I can't help with that" answers nothing, unless what we asked is something not allowed
            return len(self.in_flight) if all(i.expect_refusal for i in self.in_flight) else 0
        if confirm:
            action = confirm.group("action")
            return next((i for i, f in enumerate(self.in_flight) if label(f.tool.name) == action), 0)
        if ask:
            asked = ask.group("label")
            return next(
                (i for i, f in enumerate(self.in_flight) if any(label(n) == asked for n in f.tool.properties)), 0
            )
        return len(self.in_flight)

    # --- reading the assistant --------------------------------------------------------------
    def _learn(self, reply: str) -> None:
        """Remember values the assistant stated that later requests will need."""
        assert self.task is not None
        wanted: dict[int, set[str]] = {}
        for sg in self.task.subgoals:
            for req in sg.requests:
                for value in req.args.values():
                    ref = Ref.parse(value)
                    if ref:
                        wanted.setdefault(ref.subgoal, set()).add(ref.field)
        open_subgoals = {f.subgoal for f in self.in_flight}
        for k in open_subgoals & set(wanted):
            for name, raw in heard_values(reply, sorted(wanted[k])).items():
                self.heard.setdefault((k, name), raw)
            for item in self.in_flight:  # what we said ourselves we know (the assistant need not repeat it)
                for name in wanted[k] & set(item.args) if item.subgoal == k else ():
                    self.heard.setdefault((k, name), render_value(item.args[name]))

    def _mark_answered(self, count: int, failed: bool) -> None:
        for item in self.in_flight[:count]:
            self.cursor[item.subgoal] += 1
            if failed:
                self.failed.add(item.subgoal)
        self.in_flight = self.in_flight[count:]
        if count:
            self.misunderstandings = 0

    # --- moves ---
    def _readback(self, item: _InFlight, reply: str) -> UserAction | None:
        """Unsure the change went through? Read one changed value back (never the record's key)."""
        if self.rng.random() >= self.rules.confirm_changes_probability:
            return None
        names = [n for n in item.args if n in changed_parameters(item.tool)]
        heard = heard_values(reply, names)
        if not heard:
            return None
        name = self.rng.choice(sorted(heard))
        return UserAction(content=self._say(READBACK, label=label(name), value=heard[name]))

    def _supply(self, asked_label: str) -> UserAction:
        for item in self.in_flight:
            for name, value in item.args.items():
                if label(name) == asked_label:
                    said = item.slip[1] if item.slip and item.slip[0] == name else value
                    text = self._say(SUPPLY[self.verbosity], label=label(name), value=render_value(said))
                    return UserAction(content=text)
        return UserAction(content=self._say(NOT_SURE))

    def _confirm(self, m: re.Match[str]) -> UserAction:
        item = next((i for i in self.in_flight if label(i.tool.name) == m.group("action")), None)
        if item is None:
            return UserAction(content="No, that's not what I asked for.")
        read_back = confirmed_values(m.group("pairs"), [label(n) for n in item.args])
        wrong = [n for n, value in item.args.items() if not same_value(value, read_back.get(label(n), "\x00"))]
        if wrong:
            pattern = CHANGE_OF_MIND if item.mind_changed else CORRECTION
            item.slip, item.mind_changed = None, False
            fixes = " ".join(self._say(pattern, label=label(n), value=render_value(item.args[n])) for n in wrong)
            return UserAction(content=fixes)
        return UserAction(content=self._say(AFFIRM[self.verbosity]))

    def _next_request(self, prefix: str) -> UserAction:
        batch = self._choose_batch()
        if not batch:
            if self._all_done():
                return UserAction(
                    content=" ".join(p for p in (prefix, self._say(CLOSINGS[self.verbosity]), self._sign_off()) if p),
                    done=True,
                    end_reason="completed" if not self.failed else "hopeless",
                )
            return UserAction(
                content=f"{prefix} I can't go on without the details I asked for. Goodbye.".strip(),
                done=True,
                end_reason="hopeless",
            )
        self.in_flight = batch
        if prefix.endswith(","):  # "Hi there, can you..." goes on in the same sentence
            return UserAction(content=f"{prefix} {_mid_sentence(self._voice(batch))}")
        chatty = self.rng.random() < (0.85 if self.verbosity == "verbose" else 0.5)
        aside = remark(self.rng) if chatty else ""
        if chatty and self.verbosity == "verbose" and self.rng.random() < 0.55:
            aside += " " + remark(self.rng)
        return UserAction(content=" ".join(p for p in (prefix, aside, self._voice(batch)) if p))

    def _sign_off(self) -> str:
        return sign_off(self.rng) if self.rng.random() < (0.75 if self.verbosity == "verbose" else 0.35) else ""

    # --- planning ---------------------------------------------------------------------------
    def _all_done(self) -> bool:
        assert self.task is not None
        return all(self.cursor[k] >= len(sg.requests) for k, sg in enumerate(self.task.subgoals, start=1))

    def _resolve(self, subgoal: int, request: ToolRequest) -> dict[str, Any] | None:
        tool = self.tools[request.tool]
        args: dict[str, Any] = {}
        for name, value in request.args.items():
            ref = Ref.parse(value)
            if ref:
                raw = self.heard.get((ref.subgoal, ref.field))
                if raw is None:
                    return None
                value = convert(raw, tool.properties[name])
            args[name] = value
        return args

    def _choose_batch(self) -> list[_InFlight]:
        assert self.task is not None
        limit = self.rules.max_subgoals_per_message
        want = 1
        while want < limit and self.rng.random() < self.rules.join_probability:
            want += 1
        want = max(want, self.rules.min_subgoals_per_message)
        batch: list[_InFlight] = []
        for k, sg in enumerate(self.task.subgoals, start=1):
            if self.cursor[k] >= len(sg.requests):
                continue
            request = sg.requests[self.cursor[k]]
            args = self._resolve(k, request)
            if args is None:
                break  # sub-goals are ordered: don't skip ahead of one that is waiting on data
            batch.append(self._in_flight(k, request.tool, args, request.expect == "refused"))
            if len(batch) >= want or self.tools[request.tool].kind == "write":
                break
            if self.cursor[k] + 1 < len(sg.requests):
                break  # finish this sub-goal before starting the next: later ones may change its data
        if len(batch) == 1 and batch[0].tool.kind == "read" and self.will_give_wrong_id:
            item = batch[0]
            for name in item.tool.required:
                wrong = _misremembered(item.args.get(name), item.tool.properties[name])
                if wrong is not None:
                    self.will_give_wrong_id = False
                    item.wrong_key = (name, wrong)
                    break
        return batch

    def _in_flight(self, subgoal: int, tool_name: str, args: dict[str, Any], refusal: bool = False) -> _InFlight:
        tool = self.tools[tool_name]
        if refusal:  # asked as meant: the point is the assistant's answer, not a detail of it
            return _InFlight(subgoal, tool, args, expect_refusal=True)
        if self.will_change_mind and tool.kind == "write":
            first_choice = self._alternative(tool, args, numbers=True)
            if first_choice is not None:
                self.will_change_mind = False
                return _InFlight(subgoal, tool, args, slip=first_choice, mind_changed=True)
        return _InFlight(subgoal, tool, args, slip=self._maybe_slip(tool_name, args))

    def _maybe_slip(self, tool_name: str, args: dict[str, Any]) -> tuple[str, Any] | None:
        """Sometimes say a wrong (but well-formed) detail of a change; corrected on read-back."""
        tool = self.tools[tool_name]
        if tool.kind != "write" or self.rng.random() >= self.slip_rate:
            return None
        return self._alternative(tool, args)

    def _alternative(self, tool: ToolSpec, args: dict[str, Any], numbers: bool = False) -> tuple[str, Any] | None:
        """Another well-formed value for a detail of a change (not the record it is about); with
        `numbers`, a count too (two of something, then three: a change of mind, not a slip)."""
        for name, value in args.items():
            schema = tool.properties[name]
            other = value + 1 if isinstance(value, int) and not isinstance(value, bool) else None
            if (
                numbers
                and name in changed_parameters(tool)
                and other is not None
                and other <= schema.get("maximum", other)
            ):
                return name, other
        for name, value in args.items():
            schema = tool.properties[name]
            if name not in changed_parameters(tool):
                continue  # people slip on details of the change, not on the record they are talking about
            if "enum" in schema and len(schema["enum"]) > 1:
                return name, next(v for v in schema["enum"] if v != value)
            text = str(value)
            pair = re.search(r"\d\d", text) if schema.get("type") == "string" else None
            if pair is None:
                continue
            i = pair.start()
            swapped = text[:i] + text[i + 1] + text[i] + text[i + 2 :]
            if swapped != text and re.fullmatch(slot_pattern(schema), swapped):
                return name, swapped
        return None

    # --- speaking ---------------------------------------------------------------------------
    def _voice(self, batch: list[_InFlight], rephrase: bool = False) -> str:
        sentences = []
        for i, item in enumerate(batch):
            options = self._expressible(item)
            if rephrase and item.phrasing is not None and len(options) > 1:
                options = [o for o in options if o.template != item.phrasing.template]
            item.phrasing = self.rng.choice(options)
            said = dict(item.args)
            if item.slip:
                said[item.slip[0]] = item.slip[1]
            if item.wrong_key is not None:
                if item.wrong_key[0] in item.phrasing.slots:
                    said[item.wrong_key[0]] = item.wrong_key[1]
                else:
                    item.wrong_key = None  # this wording leaves the id for the assistant to ask: no mistake
            text = self._render(item.phrasing, {k: v for k, v in said.items() if k in item.phrasing.slots})
            if i:
                text = self.rng.choice(CONNECTORS) + _mid_sentence(text)
            sentences.append(text)
        return " ".join(sentences)

    def _render(self, phrasing: Phrasing, args: dict[str, Any]) -> str:
        """The request in words. Its polite opening and the way a record's id is introduced ("order
        5", "order number 5") are the user's own: the assistant reads past both."""
        if phrasing.head:
            opening, end = self.rng.choice(REQUEST_OPENINGS[phrasing.opens])
            verb = self.rng.choice(phrasing.verbs) if phrasing.verbs else None
            text = f"{self._say(opening)} {phrasing.render_core(args, verb)}{end}"
        else:
            text = phrasing.render(args)
        for name, value in args.items():
            if record_noun(name) is not None:
                text = id_worded(text, name, value, self.rng.choice(ID_WORDINGS))
        return text

    def _expressible(self, item: _InFlight) -> list[Phrasing]:
        """Phrasings that say every optional value we mean and need nothing we don't have."""
        optional = {k for k in item.args if k not in item.tool.required}
        options = [
            p for p in self.book.by_tool[item.tool.name] if set(p.slots) <= set(item.args) and optional <= set(p.slots)
        ]
        complete = [p for p in options if set(p.slots) == set(item.args)]
        # Mostly say everything at once; sometimes leave a required value for the assistant to ask.
        if complete and (len(options) == len(complete) or self.rng.random() < 0.4):
            return complete
        return options or list(self.book.by_tool[item.tool.name])
