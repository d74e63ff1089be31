"""`convosim report RUN`: one self-contained HTML file a person can open anywhere.

Charts (plotly, its JavaScript inlined once, so the file works offline): turns and sub-goals per
session, tool coverage (every tool of the domain, called or not), rejection reasons, diversity,
duplicates found at export, and tokens and cost per accepted dialogue when models were used.
Everything is read from the run store; element ids are fixed, so the same run gives the same file.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
import plotly.offline

from convosim.config import scenario_from_record
from convosim.environments.domain import load_domain
from convosim.rules.behaviours import TAGS, recorded_tags
from convosim.runners.diversity import Diversity
from convosim.runners.export import openai_messages
from convosim.runners.replay import open_store
from convosim.runners.row_checks import RowChecks
from convosim.runners.stats import turn_counts


def report_data(run_dir: str | Path) -> dict[str, Any]:
    """The numbers behind every chart, in one pass over the store."""
    store = open_store(run_dir)
    try:
        run = store.runs()[0]
        scenario = scenario_from_record(run["scenario"])
        domain = load_domain(scenario.domain)
        usage = store.usage()
        checks = RowChecks(domain.policy, scenario.near_duplicate_threshold)
        variety = Diversity()
        data: dict[str, Any] = {
            "scenario": scenario.name,
            "domain": domain.name,
            "sessions": 0,
            "status": Counter(),
            "turns": [],
            "subgoals_total": [],
            "subgoals_completed": [],
            "tools": dict.fromkeys(sorted(domain.tools), 0),
            "tool_errors": dict.fromkeys(sorted(domain.tools), 0),
            "reasons": Counter(),
            "tags": Counter(),
            "duplicates": Counter(),
            "tokens_per_accepted": [],
            "cost_per_accepted": [],
        }
        tools = domain.openai_tools()
        for row in store.sessions(run["run_id"]):
            events = list(store.events(row["session_id"]))
            data["sessions"] += 1
            data["status"][row["status"]] += 1
            data["turns"].append(turn_counts(events)["turns"])
            data["subgoals_total"].append(row["subgoals_total"] or 0)
            data["subgoals_completed"].append(row["subgoals_completed"] or 0)
            data["reasons"].update({r["code"] for r in row["reasons"]})
            data["tags"].update(recorded_tags(events))
            for event in events:
                for result in getattr(event, "results", ()) if event.type == "tool_result" else ():
                    data["tools"][result.name] = data["tools"].get(result.name, 0) + 1
                    data["tool_errors"][result.name] = data["tool_errors"].get(result.name, 0) + int(result.is_error)
            if row["status"] != "accepted":
                continue
            variety.add(events)
            messages = openai_messages(domain.policy, events)
            data["duplicates"].update(
                r.code for r in checks.check(row["session_id"], {"messages": messages, "tools": tools})
            )
            spent = usage.get(row["session_id"], {}).values()
            if spent:
                data["tokens_per_accepted"].append(sum(u.prompt_tokens + u.completion_tokens for u in spent))
                if not any(u.cost_unknown_calls for u in spent):  # a local model's cost is unknown, not 0
                    data["cost_per_accepted"].append(sum(u.cost_usd for u in spent))
        data["diversity"] = variety.summary()
        return data
    finally:
        store.close()


def _figure(fig: go.Figure, div_id: str, title: str) -> str:
    fig.update_layout(title=title, height=360, margin={"l": 50, "r": 20, "t": 50, "b": 80}, template="plotly_white")
    chart: str = fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False})
    return chart


def _bar(counts: dict[str, Any], div_id: str, title: str, color: str = "#4c78a8") -> str:
    keys = list(counts)
    return _figure(go.Figure(go.Bar(x=keys, y=[counts[k] for k in keys], marker_color=color)), div_id, title)


def _histogram(values: list[float], div_id: str, title: str, color: str = "#4c78a8") -> str:
    return _figure(go.Figure(go.Histogram(x=values, marker_color=color)), div_id, title)


def charts(data: dict[str, Any]) -> list[tuple[str, str]]:
    """(section title, chart HTML) for every chart the data supports."""
    out = [
        ("Turns per session", _histogram(data["turns"], "chart-turns", "Turns per session (every message counts)")),
        (
            "Sub-goals per session",
            _figure(
                go.Figure(
                    [
                        go.Histogram(x=data["subgoals_total"], name="in the task", marker_color="#9ecae9"),
                        go.Histogram(x=data["subgoals_completed"], name="completed", marker_color="#4c78a8"),
                    ]
                ).update_layout(barmode="group"),
                "chart-subgoals",
                "Sub-goals per session",
            ),
        ),
        (
            "Tool coverage",
            _figure(
                go.Figure(
                    [
                        go.Bar(x=list(data["tools"]), y=list(data["tools"].values()), name="calls"),
                        go.Bar(x=list(data["tool_errors"]), y=list(data["tool_errors"].values()), name="errors"),
                    ]
                ),
                "chart-tools",
                f"Tool calls ({sum(1 for v in data['tools'].values() if v)} of {len(data['tools'])} tools used)",
            ),
        ),
        ("Sessions by verdict", _bar(dict(data["status"]), "chart-status", "Sessions by verdict", "#54a24b")),
    ]
    if data["tags"]:
        tags = {tag: data["tags"][tag] for tag in TAGS if data["tags"][tag]}
        out.append(("Behaviour tags", _bar(tags, "chart-tags", "Sessions per behaviour tag", "#b279a2")))
    if data["reasons"]:
        out.append(("Rejection reasons", _bar(dict(data["reasons"]), "chart-reasons", "Rejection reasons", "#e45756")))
    diversity = {k: v for k, v in data["diversity"].items() if isinstance(v, float)}
    out.append(("Diversity", _bar(diversity, "chart-diversity", "Diversity of accepted dialogue (0 to 1)", "#72b7b2")))
    if data["tokens_per_accepted"]:
        out.append(
            (
                "Tokens per accepted dialogue",
                _histogram(data["tokens_per_accepted"], "chart-tokens", "Tokens per accepted dialogue", "#f58518"),
            )
        )
    return out


def render(data: dict[str, Any]) -> str:
    accepted = data["status"].get("accepted", 0)
    rows = [
        ("scenario", data["scenario"]),
        ("domain", data["domain"]),
        ("sessions", data["sessions"]),
        ("accepted", f"{accepted} ({100 * accepted / max(1, data['sessions']):.1f}%)"),
        ("mean turns", f"{sum(data['turns']) / max(1, len(data['turns'])):.2f}"),
        ("mean sub-goals completed", f"{sum(data['subgoals_completed']) / max(1, data['sessions']):.2f}"),
        ("exact duplicates left out", data["duplicates"].get("duplicate", 0)),
        ("near duplicates left out", data["duplicates"].get("near_duplicate", 0)),
        ("most repeated assistant sentence", data["diversity"]["top_assistant_sentence"]),
    ]
    if data["cost_per_accepted"]:
        mean_cost = sum(data["cost_per_accepted"]) / len(data["cost_per_accepted"])
        rows.append(("cost per accepted dialogue", f"${mean_cost:.4f}"))
    table = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    sections = "".join(
        f'<section><h2>{html.escape(t)}</h2><div class="chart">{c}</div></section>' for t, c in charts(data)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>convosim report: {html.escape(data['scenario'])}</title>"
        "<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:1100px}"
        "table{border-collapse:collapse}th,td{border:1px solid #ddd;padding:.3rem .6rem;text-align:left}"
        "section{margin-top:1.5rem}.chart{height:360px}</style>"
        f"<script>{plotly.offline.get_plotlyjs()}</script></head><body>"
        f"<h1>convosim report: {html.escape(data['scenario'])}</h1><table>{table}</table>{sections}"
        f"<script type='application/json' id='report-data'>{_script_json(_plain(data))}</script>"
        "</body></html>"
    )


def _script_json(value: Any) -> str:
    """JSON safe inside a <script> element (which is not entity-decoded): no `</` can close it."""
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, Counter) else v for k, v in data.items()}


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the report (default RUN/report.html) beside its final name, then rename it into place."""
    target = Path(out) if out is not None else Path(run_dir) / "report.html"
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_suffix(target.suffix + ".tmp")
    staged.write_text(render(report_data(run_dir)), encoding="utf-8")
    staged.replace(target)
    return target
