"""`convosim replay RUN SESSION`: a terminal viewer that steps through a session turn by turn.

Each turn shows every bus message with sender and recipient, tool calls with their arguments, the
SQL each call ran, the database rows it changed, and at the end the verdict with its reasons.
Keys: right/n next turn, left/p previous, a cycle the agent filter, t cycle the event-type filter,
q quit. The same text is printed by `--plain`.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Footer, Header, Static

from convosim.runners.replay import Recording, Step, render_turn

AGENTS: list[str | None] = [None, "user", "assistant", "tool_executor", "validator", "supervisor"]


class ReplayApp(App[None]):
    TITLE = "convosim replay"
    BINDINGS: ClassVar[list[Binding | tuple[str, str] | tuple[str, str, str]]] = [
        Binding("right,n", "next_turn", "Next turn"),
        Binding("left,p", "previous_turn", "Previous turn"),
        Binding("a", "cycle_agent", "Agent filter"),
        Binding("t", "cycle_type", "Type filter"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, recording: Recording, steps: list[Step]) -> None:
        super().__init__()
        self.recording = recording
        self.steps = steps
        self.turns = recording.turns
        self.position = 0
        self.agent: str | None = None
        self.types: list[str | None] = [None, *sorted({s.event.type for s in steps})]
        self.event_type: str | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(id="status")
        with VerticalScroll():
            yield Static(id="body")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"session {self.recording.session_id} ({self.recording.session['status']})"
        self.show()

    @property
    def turn(self) -> int:
        return self.turns[self.position]

    def lines(self) -> list[str]:
        return render_turn(self.steps, self.turn, self.agent, self.event_type) or ["(nothing matches the filters)"]

    def show(self) -> None:
        status = (
            f"turn {self.turn}  ({self.position + 1}/{len(self.turns)})   "
            f"agent: {self.agent or 'all'}   type: {self.event_type or 'all'}"
        )
        self.query_one("#status", Static).update(Text(status))
        self.query_one("#body", Static).update(Text("\n".join(self.lines())))

    def action_next_turn(self) -> None:
        self.position = min(self.position + 1, len(self.turns) - 1)
        self.show()

    def action_previous_turn(self) -> None:
        self.position = max(self.position - 1, 0)
        self.show()

    def action_cycle_agent(self) -> None:
        self.agent = AGENTS[(AGENTS.index(self.agent) + 1) % len(AGENTS)]
        self.show()

    def action_cycle_type(self) -> None:
        self.event_type = self.types[(self.types.index(self.event_type) + 1) % len(self.types)]
        self.show()
