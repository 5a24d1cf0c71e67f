"""The results table: one Markdown line per figure, with its baseline, ratio, spread and target."""

from __future__ import annotations

from typing import Any


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    magnitude = abs(value)
    text = f"{value:,.0f}" if magnitude >= 100 else f"{value:.1f}" if magnitude >= 10 else f"{value:.2f}"
    return f"{text} {unit}".strip()


def _met(value: bool | None) -> str:
    return {True: "met", False: "**missed**", None: ""}[value]


def table(results: dict[str, Any]) -> str:
    machine = results["machine"]
    lines = [
        f"# overmind-mcp benchmarks ({results['when']}{', quick' if results['quick'] else ''})",
        "",
        f"{machine['cpus']} vCPU, Python {machine['python']}, {machine['platform']}; "
        f"load average {machine['load_average_start']} at the start, {machine.get('load_average_end', '?')} at the end "
        "(1 min). Every figure is a median; the spread is [min, max] over rounds of the quantity named.",
        "",
        "| benchmark | figure | overmind-mcp | baseline | Δ | ratio | spread | target | |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    for name, outcome in results["benchmarks"].items():
        if "skipped" in outcome:
            lines.append(f"| {name} | skipped: {outcome['skipped']} | | | | | | | |")
            continue
        if "error" in outcome:
            lines.append(f"| {name} | failed: {outcome['error']} | | | | | | | |")
            continue
        for entry in outcome["rows"]:
            unit = entry["unit"]
            baseline = _number(entry["baseline"], unit)
            if entry["baseline"] is not None:
                baseline += f" ({entry['baseline_name']})"
            elif entry["baseline_name"]:
                baseline = entry["baseline_name"]
            spread = ""
            if entry["spread"]:
                low, high = entry["spread"]
                spread = f"[{_number(low)}, {_number(high)}] {entry['spread_of']}"
            ratio = f"{entry['ratio']:.2f}×" if entry["ratio"] is not None else "–"
            figure = entry["metric"] + (f" ({entry['note']})" if entry.get("note") else "")
            target = entry["target"] or ""
            lines.append(
                f"| {name} | {figure} | {_number(entry['ours'], unit)} | {baseline} | "
                f"{_number(entry['diff'], unit)} | {ratio} | {spread} | {target} | {_met(entry['met'])} |"
            )
    for name, outcome in results["benchmarks"].items():
        if outcome.get("notes"):
            lines += ["", f"**{name}**", ""] + [f"- {note}" for note in outcome["notes"]]
    return "\n".join(lines) + "\n"
