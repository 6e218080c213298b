"""The Dash page: unit grid, anomalies with their top features, alarms, and one unit's history.

Every unit shows its setpoint and state (off / warming / on / derated) in the grid, and its
history plots shade the stretches it was not simply on, so a step in a reading can be told
apart from a change of operating point.

Every browser polls the server once a second (``dcc.Interval``); the callbacks only read the
shared ``DashboardState`` snapshot, so the database load does not grow with the number of tabs.
The grid cells are fixed (``--lccs`` x ``--units``) so a click is never lost to a re-render.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

import flask
from dash import ALL, Dash, Input, Output, State, callback_context, dcc, html, no_update

from laserguard.dashboard.feedback_monitor import FeedbackMonitor, UnitBaseline, describe
from laserguard.dashboard.http_limits import RejectCounter, install
from laserguard.dashboard.state import DashboardState, UnitState, setpoint_of, state_of
from laserguard.dashboard.write_guard import WriteGuard
from laserguard.storage.unit_history import RAW_WINDOW_S
from laserguard.wire.codec import CHANNELS

HISTORY_SAMPLES = 300
# The unit history's windows: the last HISTORY_SAMPLES samples (0), else seconds; up to 10 min
# from raw frames, beyond that from the per-minute summaries (storage/unit_history.py).
HISTORY_WINDOWS = {"last 300 samples": 0, "10 min": 600, "1 h": 3600, "1 d": 86_400, "30 d": 30 * 86_400}
SETPOINT_TITLE = "setpoint (A)"
NO_PAYLOAD = "No payload available: nothing has been stored in the latest-state collection yet"

STYLE = """
body { font-family: system-ui, sans-serif; margin: 16px; background: #f6f7f9; color: #1d232b; }
h1 { font-size: 20px; margin: 0 0 8px 0; } h2 { font-size: 15px; margin: 14px 0 6px 0; }
.status-bar { display: flex; gap: 18px; flex-wrap: wrap; font-size: 13px; margin-bottom: 6px; }
.status-bar b { font-weight: 600; }
.unit-row { display: grid; grid-template-columns: repeat(16, minmax(52px, 1fr)); gap: 4px; }
.unit { border: 1px solid #c6ccd4; border-radius: 4px; background: #e3f4e6; padding: 3px; font-size: 11px;
        text-align: left; cursor: pointer; min-height: 48px; display: flex; flex-direction: column; }
.unit.nodata { background: #eceef1; color: #8a939e; }
.unit.learning { background: #e8eef7; border-style: dashed; }
.unit-baseline { color: #5d6d7e; font-size: 10px; }
.unit-context { color: #3d4b5c; font-size: 10px; }
.unit.state-off { background: #dde1e6; color: #56606b; }
.unit.state-warming { background: #fcefd2; }
.unit.state-derated { background: #ece3f5; }
.unit.anomalous { background: #f8d0cc; border-color: #c0392b; border-width: 2px; }
.unit.alarm-active { box-shadow: inset 0 0 0 2px #c0392b; }
.unit.alarm-acknowledged { box-shadow: inset 0 0 0 2px #d68910; }
.unit.selected { outline: 3px solid #2e86c1; }
.unit-id { font-weight: 600; } .unit-top { color: #922b21; font-size: 10px; overflow-wrap: anywhere; }
table { border-collapse: collapse; font-size: 12px; background: white; }
td, th { border: 1px solid #d5dae0; padding: 3px 6px; text-align: left; }
.columns { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; }
.graphs { display: grid; grid-template-columns: 1fr 1fr 1fr; gap: 8px; }
.message { font-size: 12px; color: #1f618d; min-height: 16px; }
"""


def cell_id(lcc: int, unit: int) -> dict[str, Any]:
    return {"type": "unit-cell", "lcc": lcc, "unit": unit}


# Shading of the history plots per state; "on" (the normal case) and unknown are not shaded.
STATE_BAND_COLOURS = {"off": "#8a939e", "warming": "#e69b00", "derated": "#8e44ad"}


def _fmt(value: float | None, pattern: str, missing: str = "-") -> str:
    return pattern.format(value) if value is not None else missing


def context_text(state: UnitState) -> str:
    """Setpoint and state as the grid cell shows them, e.g. ``8.00 A on``."""
    return f"{_fmt(state.setpoint_a, '{:.2f}')} A {state.state}"


def baseline_text(baseline: UnitBaseline | None) -> str:
    """One unit's baseline as an operator reads it."""
    if baseline is None:
        return "baseline: unknown (no detect metrics)"
    if baseline.learning:
        return "baseline: learning (not judged yet)"
    age = "" if baseline.age_s is None else f", learned {baseline.age_s / 3600:.1f} h ago"
    deviation = (
        "" if baseline.deviation is None else f", largest deviation {baseline.deviation:.2f} of its threshold"
    )
    return "baseline: ready" + age + deviation


def cell_view(
    state: UnitState | None, selected: bool, baseline: UnitBaseline | None = None
) -> tuple[str, list[Any], str]:
    """className, children and tooltip of one grid cell."""
    if state is None:
        return "unit nodata" + (" selected" if selected else ""), [html.Span("no data")], "no data stored yet"
    classes = ["unit"]
    if baseline is not None and baseline.learning:
        classes.append("learning")
    if state.state in STATE_BAND_COLOURS:
        classes.append(f"state-{state.state}")
    if state.anomalous:
        classes.append("anomalous")
    if state.alarm_state == "active":
        classes.append("alarm-acknowledged" if state.alarm_acknowledged else "alarm-active")
    if selected:
        classes.append("selected")
    children: list[Any] = [
        html.Span(f"{state.unit}", className="unit-id"),
        html.Span(_fmt(state.score, "{:+.3f}")),
        html.Span(context_text(state), className="unit-context"),
    ]
    if state.anomalous and state.top_features:
        children.append(html.Span(", ".join(state.top_features[:2]), className="unit-top"))
    elif baseline is not None and baseline.learning:
        children.append(html.Span("learning", className="unit-baseline"))
    elif baseline is not None and baseline.deviation is not None:
        children.append(html.Span(f"dev {baseline.deviation:.2f}", className="unit-baseline"))
    tooltip = (
        f"LCC {state.lcc} unit {state.unit}, seq {state.seq}, score {_fmt(state.score, '{:+.4f}')}"
        + f", setpoint {_fmt(state.setpoint_a, '{:.3f}')} A, state {state.state}"
        + (f", top features {', '.join(state.top_features)}" if state.top_features else "")
        + f", alarm {state.alarm_state}, {baseline_text(baseline)}"
    )
    return " ".join(classes), children, tooltip


def _layout(lccs: Sequence[int], units: int, token_required: bool) -> html.Div:
    rows = []
    for lcc in lccs:
        cells = [
            html.Button(id=cell_id(lcc, unit), className="unit nodata", n_clicks=0, children=str(unit))
            for unit in range(units)
        ]
        rows.append(html.Div([html.H2(f"LCC {lcc}"), html.Div(cells, className="unit-row")], className="lcc"))
    return html.Div(
        [
            html.H1("laserguard: live laser units"),
            html.Div(id="status-bar", className="status-bar"),
            html.Div(rows, id="unit-grid"),
            html.Div(
                [
                    html.Div([html.H2("Anomalous units"), html.Div(id="anomaly-list")]),
                    html.Div(
                        [
                            html.H2("Alarms"),
                            # Every write action sends this field's value; the server checks it
                            # (WriteGuard). Hidden when no token is configured (loopback only).
                            dcc.Input(
                                id="operator-token",
                                type="password",
                                placeholder="operator token",
                                autoComplete="off",
                                style={} if token_required else {"display": "none"},
                            ),
                            html.Div(id="alarm-message", className="message"),
                            html.Div(id="alarm-table"),
                        ]
                    ),
                ],
                className="columns",
            ),
            html.H2("Select a unit", id="detail-title"),
            html.Div(id="detail-context", className="message"),
            html.Div(id="detail-features", className="message"),
            html.Div(
                [
                    html.Span(id="detail-baseline", className="message"),
                    html.Button("Re-baseline", id="rebaseline", n_clicks=0, style={"marginLeft": "12px"}),
                    html.Span(id="rebaseline-message", className="message", style={"marginLeft": "12px"}),
                ]
            ),
            dcc.Dropdown(
                id="channel-select",
                options=[{"label": c, "value": c} for c in CHANNELS],
                value="optical_power_w",
                clearable=False,
                style={"maxWidth": "320px"},
            ),
            dcc.RadioItems(
                id="history-window",
                options=[{"label": label, "value": seconds} for label, seconds in HISTORY_WINDOWS.items()],
                value=0,
                inline=True,
            ),
            html.Div(
                [dcc.Graph(id="score-graph"), dcc.Graph(id="channel-graph"), dcc.Graph(id="setpoint-graph")],
                className="graphs",
            ),
            dcc.Store(id="selected-unit", data=None),
            dcc.Store(id="alarm-signature", data=""),
            dcc.Interval(id="tick", interval=1000),
        ]
    )


def _status(state: DashboardState, monitor: FeedbackMonitor) -> list[Any]:
    snapshot = state.snapshot
    stats = monitor.stats()
    versions = sorted({u.model_version for u in snapshot.units.values() if u.model_version})
    model = stats.model_version or (", ".join(versions) if versions else None)
    active = sum(1 for a in snapshot.alarms if a.state == "active")
    items = [
        ("model", model or "-"),
        ("units", str(len(snapshot.units))),
        ("anomalous", str(sum(u.anomalous for u in snapshot.units.values()))),
        ("learning", str(sum(b.learning for b in stats.baselines.values()))),
        ("active alarms", str(active)),
        ("feedback", f"{stats.rate_hz:.1f}/s"),
        (
            "sensor→feedback p50/p99",
            f"{_fmt(stats.latency_ms_p50, '{:.1f}')}/{_fmt(stats.latency_ms_p99, '{:.1f}')} ms",
        ),
        ("inference", _fmt(stats.inference_us_mean, "{:.0f} µs")),
        ("database", snapshot.error or "ok"),
        (
            "updated",
            time.strftime("%H:%M:%S UTC", time.gmtime(snapshot.read_at)) if snapshot.read_at else "never",
        ),
    ]
    return [html.Span([html.B(f"{k}: "), html.Span(v, id=f"status-{k.split()[0]}")]) for k, v in items]


def _anomaly_table(state: DashboardState) -> Any:
    flagged = sorted((u for u in state.snapshot.units.values() if u.anomalous), key=lambda u: (u.lcc, u.unit))
    if not flagged:
        return html.Div("none", id="no-anomalies")
    # The operating context next to the score: a unit flagged while off or warming up reads differently.
    header = html.Tr([html.Th(h) for h in ("LCC", "unit", "score", "setpoint, state", "top features")])
    rows = [
        html.Tr(
            [
                html.Td(u.lcc),
                html.Td(u.unit),
                html.Td(_fmt(u.score, "{:+.4f}")),
                html.Td(context_text(u), className="anomaly-context"),
                html.Td(
                    ", ".join(f"{n} ({w:.2f})" for n, w in zip(u.top_features, u.top_weights, strict=True))
                ),
            ],
            className="anomaly-row",
        )
        for u in flagged
    ]
    return html.Table([header, *rows])


def _alarm_table(state: DashboardState) -> Any:
    alarms = state.snapshot.alarms
    if not alarms:
        return html.Div("no alarms", id="no-alarms")
    header = html.Tr([html.Th(h) for h in ("LCC", "unit", "raised", "state", "top features", "")])
    rows = []
    for a in alarms:
        actions: list[Any] = []
        if a.state == "active":
            if not a.acknowledged:
                actions.append(
                    html.Button("Acknowledge", id={"type": "alarm-ack", "event": a.event_id}, n_clicks=0)
                )
            actions.append(html.Button("Clear", id={"type": "alarm-clear", "event": a.event_id}, n_clicks=0))
        state_text = a.state + (f", acknowledged by {a.acknowledged_by}" if a.acknowledged else "")
        rows.append(
            html.Tr(
                [
                    html.Td(a.lcc),
                    html.Td(a.unit),
                    html.Td(a.raised_at or ""),
                    html.Td(state_text, className="alarm-state"),
                    html.Td(", ".join(a.top_features)),
                    html.Td(actions),
                ],
                id={"type": "alarm-row", "event": a.event_id},
                className=f"alarm-row alarm-{a.state}",
            )
        )
    return html.Table([header, *rows])


def state_bands(times: list[Any], states: list[str]) -> list[dict[str, Any]]:
    """Background rectangles over each run of samples in a shaded state (off, warming, derated).

    A run lasts from its first sample to the first sample of the next run, so consecutive bands
    touch and a one-sample run is still visible.
    """
    bands: list[dict[str, Any]] = []
    start = 0
    for i in range(1, len(states) + 1):
        if i < len(states) and states[i] == states[start]:
            continue
        colour = STATE_BAND_COLOURS.get(states[start])
        if colour is not None:
            bands.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": times[start],
                    "x1": times[min(i, len(times) - 1)],
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": colour,
                    "opacity": 0.22,
                    "line": {"width": 0},
                    "layer": "below",
                    "name": f"state-{states[start]}",
                }
            )
        start = i
    return bands


def _band_legend() -> str:
    return " ".join(f'<span style="color:{c}">■ {s}</span>' for s, c in STATE_BAND_COLOURS.items())


def _figure(
    x: list[Any],
    y: list[Any],
    title: str,
    flagged: list[bool] | None = None,
    bands: list[dict[str, Any]] | None = None,
    step: bool = False,
) -> dict[str, Any]:
    line: dict[str, Any] = {"shape": "hv"} if step else {}
    data: list[dict[str, Any]] = [
        {"x": x, "y": y, "type": "scatter", "mode": "lines", "name": title, "line": line}
    ]
    if flagged is not None:
        data.append(
            {
                "x": [t for t, f in zip(x, flagged, strict=True) if f],
                "y": [v for v, f in zip(y, flagged, strict=True) if f],
                "type": "scatter",
                "mode": "markers",
                "marker": {"color": "#c0392b", "size": 6},
                "name": "anomalous",
            }
        )
    layout = {
        "title": {"text": title, "font": {"size": 13}},
        "height": 260,
        "margin": {"l": 50, "r": 10, "t": 30, "b": 30},
        "showlegend": False,
    }
    shapes: list[dict[str, Any]] = list(bands or [])
    if flagged is not None:
        shapes.append(
            {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"dash": "dot"}}
        )
    if shapes:
        layout["shapes"] = shapes
    return {"data": data, "layout": layout}


def create_app(
    state: DashboardState,
    monitor: FeedbackMonitor,
    lccs: Sequence[int],
    units: int,
    guard: WriteGuard | None = None,
    baseline_state_dir: str | None = None,
) -> Dash:
    """The page. Every write action runs only if ``guard.refusal(State("operator-token"))`` is None."""
    guard = guard if guard is not None else WriteGuard(None)
    app = Dash(__name__, title="laserguard dashboard", update_title="", serve_locally=True)
    app.index_string = app.index_string.replace("{%css%}", "{%css%}<style>" + STYLE + "</style>")
    app.layout = _layout(lccs, units, guard.token_required)
    server: flask.Flask = app.server
    rejects = RejectCounter()
    install(server, rejects)

    @server.get("/casa_lcc_data")
    def casa_lcc_data() -> flask.Response:
        payload = state.snapshot.payload()
        if payload is None:
            error = state.snapshot.error
            message = NO_PAYLOAD + (f" ({error})" if error else "")
            response = flask.jsonify({"error": message})
            response.status_code = 503
            return response
        payload["feedback"] = describe(monitor.stats())
        payload["http_rejects"] = {str(code): n for code, n in sorted(rejects.by_status.items())}
        payload["write_actions_refused"] = dict(guard.refused)
        return flask.jsonify(payload)

    @app.callback(
        Output({"type": "unit-cell", "lcc": ALL, "unit": ALL}, "className"),
        Output({"type": "unit-cell", "lcc": ALL, "unit": ALL}, "children"),
        Output({"type": "unit-cell", "lcc": ALL, "unit": ALL}, "title"),
        Output("status-bar", "children"),
        Output("anomaly-list", "children"),
        Input("tick", "n_intervals"),
        Input("selected-unit", "data"),
    )
    def refresh_grid(_n: int | None, selected: dict[str, int] | None) -> tuple[Any, ...]:
        snapshot = state.snapshot
        baselines = monitor.stats().baselines
        chosen = (selected["lcc"], selected["unit"]) if selected else None
        views = [
            cell_view(
                snapshot.units.get((o["id"]["lcc"], o["id"]["unit"])),
                chosen == (o["id"]["lcc"], o["id"]["unit"]),
                baselines.get((o["id"]["lcc"], o["id"]["unit"])),
            )
            for o in callback_context.outputs_list[0]
        ]
        return (
            [v[0] for v in views],
            [v[1] for v in views],
            [v[2] for v in views],
            _status(state, monitor),
            _anomaly_table(state),
        )

    @app.callback(
        Output("alarm-table", "children"),
        Output("alarm-signature", "data"),
        Input("tick", "n_intervals"),
        State("alarm-signature", "data"),
    )
    def refresh_alarms(_n: int | None, signature: str) -> tuple[Any, Any]:
        # Re-render only when the alarms change, so an operator's click never hits a replaced button.
        current = repr([(a.event_id, a.state, a.acknowledged) for a in state.snapshot.alarms])
        if current == signature:
            return no_update, no_update
        return _alarm_table(state), current

    @app.callback(
        Output("alarm-message", "children"),
        Input({"type": "alarm-ack", "event": ALL}, "n_clicks"),
        Input({"type": "alarm-clear", "event": ALL}, "n_clicks"),
        State("operator-token", "value"),
        prevent_initial_call=True,
    )
    def alarm_action(_acks: list[int | None], _clears: list[int | None], token: str | None) -> Any:
        triggered = callback_context.triggered_id
        if not triggered or not any(t["value"] for t in callback_context.triggered):
            return no_update  # a button was (re)created, not clicked
        refusal = guard.refusal(token)
        if refusal is not None:
            print(
                f"laserguard dashboard: write action from {flask.request.remote_addr} {refusal}",
                file=sys.stderr,
                flush=True,
            )
            return refusal
        who = f"dashboard@{flask.request.remote_addr or 'unknown'}"
        event_id = str(triggered["event"])
        if triggered["type"] == "alarm-ack":
            done = state.acknowledge(event_id, who)
            return f"acknowledged {event_id}" if done else f"no alarm {event_id} to acknowledge"
        done = state.clear(event_id, who)
        return f"cleared {event_id}" if done else f"alarm {event_id} is not active"

    @app.callback(
        Output("selected-unit", "data"),
        Input({"type": "unit-cell", "lcc": ALL, "unit": ALL}, "n_clicks"),
        prevent_initial_call=True,
    )
    def select_unit(_clicks: list[int | None]) -> Any:
        triggered = callback_context.triggered_id
        if not triggered or not any(t["value"] for t in callback_context.triggered):
            return no_update
        return {"lcc": int(triggered["lcc"]), "unit": int(triggered["unit"])}

    @app.callback(
        Output("rebaseline-message", "children"),
        Input("rebaseline", "n_clicks"),
        State("selected-unit", "data"),
        State("operator-token", "value"),
        prevent_initial_call=True,
    )
    def rebaseline(clicks: int | None, selected: dict[str, int] | None, token: str | None) -> Any:
        if not clicks:
            return no_update
        refusal = guard.refusal(token)  # a write action like acknowledge and clear
        if refusal is not None:
            return f"re-baseline refused: {refusal}"
        if not selected:
            return "select a unit first"
        if baseline_state_dir is None:
            return "re-baseline needs the dashboard started with --baseline-state-dir (detect's)"
        from laserguard.live.baseline_store import request_reset

        request_reset(baseline_state_dir, selected["lcc"], selected["unit"])
        return (
            f"LCC {selected['lcc']} unit {selected['unit']}: re-baseline requested; it learns again from now"
        )

    @app.callback(
        Output("detail-baseline", "children"),
        Input("selected-unit", "data"),
        Input("tick", "n_intervals"),
    )
    def detail_baseline(selected: dict[str, int] | None, _n: int | None) -> Any:
        if not selected:
            return ""
        return baseline_text(monitor.stats().baselines.get((selected["lcc"], selected["unit"])))

    @app.callback(
        Output("detail-title", "children"),
        Output("detail-context", "children"),
        Output("detail-features", "children"),
        Output("score-graph", "figure"),
        Output("channel-graph", "figure"),
        Output("setpoint-graph", "figure"),
        Input("selected-unit", "data"),
        Input("channel-select", "value"),
        Input("tick", "n_intervals"),
        Input("history-window", "value"),
    )
    def unit_detail(
        selected: dict[str, int] | None, channel: str, _n: int | None, window_s: int | None = 0
    ) -> tuple[Any, ...]:
        if not selected:
            empty = _figure([], [], "score")
            return (
                "Select a unit",
                "",
                "click a unit for its recent history",
                empty,
                _figure([], [], channel),
                _figure([], [], SETPOINT_TITLE),
            )
        lcc, unit = selected["lcc"], selected["unit"]
        if window_s:
            docs = state.history_window(lcc, unit, window_s)
        else:
            docs = state.history(lcc, unit, HISTORY_SAMPLES)
        times = [d.get("ts") for d in docs]
        scores = [d.get("score") for d in docs]
        flagged = [bool(d.get("anomalous")) for d in docs]
        values = [(d.get("values") or {}).get(channel) for d in docs]
        bands = state_bands(times, [state_of(d) for d in docs])
        setpoints = [setpoint_of(d) for d in docs]
        current = state.snapshot.units.get((lcc, unit))
        context = (
            f"setpoint {_fmt(current.setpoint_a, '{:.3f}')} A, state {current.state}"
            if current is not None
            else ""
        )
        features = (
            f"top features: {', '.join(current.top_features)}"
            if current is not None and current.top_features
            else "no anomaly on the newest sample"
        )
        title = f"LCC {lcc} unit {unit}: last {len(docs)} samples"
        if window_s:
            label = next(k for k, v in HISTORY_WINDOWS.items() if v == window_s)
            kind = "samples" if window_s <= RAW_WINDOW_S else "minute summaries (mean, worst score)"
            title = f"LCC {lcc} unit {unit}: last {label}, {len(docs)} {kind}"
        return (
            title,
            context,
            features,
            _figure(times, scores, "anomaly score (< 0 anomalous)", flagged, bands),
            _figure(times, values, channel, bands=bands),
            _figure(times, setpoints, SETPOINT_TITLE + "  " + _band_legend(), bands=bands, step=True),
        )

    return app
