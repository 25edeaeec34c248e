"""The webhook benchmark's output: a table per comparison, medians, and one JSON line."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from statistics import median
from typing import Any

from measure import Run

# (heading, figure, format); a figure is a Run attribute, or `<process>_us` for another
# process's CPU per request (child: the server's child processes, redis, graph).
COLUMNS = (
    ("req/s", "throughput", "{:8.0f}"),
    ("p50 ms", "p50_ms", "{:8.1f}"),
    ("p99 ms", "p99_ms", "{:8.1f}"),
    ("max ms", "max_ms", "{:8.0f}"),
    ("CPU us/req", "cpu_us_per_request", "{:10.0f}"),
    ("child us", "child_us", "{:8.0f}"),
    ("busy", "busy", "{:6.2f}"),
    ("wrk us/req", "wrk_us_per_request", "{:10.1f}"),
    ("wrk busy", "wrk_busy", "{:8.2f}"),
    ("redis us", "redis_us", "{:8.0f}"),
    ("errors", "errors", "{:6.0f}"),
)
META_COLUMNS = (
    ("graph req", "graph_requests", "{:9.0f}"),
    ("drain s", "drain_seconds", "{:7.1f}"),
    ("e2e req/s", "end_to_end", "{:9.0f}"),
    ("graph us", "graph_us", "{:8.0f}"),
)
RATIOS = ("ratio", "p99_ratio", "cpu_ratio", "e2e_ratio")


@dataclass
class Round:
    """One round of a comparison: the floor's run and the engine's."""

    floor: Run
    engine: Run

    @property
    def ratio(self) -> float:
        """Throughput, engine over floor: the issue's goal is at least 0.8 on Redis."""
        return self.engine.throughput / self.floor.throughput

    @property
    def e2e_ratio(self) -> float:
        return self.engine.end_to_end / self.floor.end_to_end

    @property
    def p99_ratio(self) -> float:
        return self.engine.p99_ms / self.floor.p99_ms

    @property
    def cpu_ratio(self) -> float:
        return self.engine.cpu_us_per_request / self.floor.cpu_us_per_request


def figure(run: Run, name: str) -> float:
    if name.endswith("_us") and name != "p50_us":
        return float(getattr(run, name.removesuffix("_us") + "_cpu")) / run.requests * 1e6
    return float(getattr(run, name))


def row(label: str, server: str, numbers: list[float], columns: tuple) -> str:
    cells = "".join(" " + fmt.format(n) for n, (_, _, fmt) in zip(numbers, columns, strict=True))
    return f"{label:<7}{server:<8}{cells}"


def table(config: str, rounds: list[Round], columns: tuple[tuple[str, str, str], ...] = ()) -> str:
    """The rounds and their medians, in `columns` (by default the webhooks' own)."""
    meta = config == "meta"
    columns = columns or COLUMNS + (META_COLUMNS if meta else ())
    head = "".join(f" {label:>{len(fmt.format(0))}}" for label, _, fmt in columns)
    lines = [f"\n== {config}: {len(rounds)} rounds ==", f"{'round':<7}{'server':<8}{head}"]
    for number, one in enumerate(rounds, 1):
        for run in (one.floor, one.engine):
            numbers = [figure(run, name) for _, name, _ in columns]
            lines.append(row(str(number), run.server, numbers, columns))
        lines.append(f"{'':7}{ratios_line(one.__getattribute__, meta)}")
    for server in ("floor", "engine"):
        runs = [getattr(one, server) for one in rounds]
        numbers = [median(figure(run, name) for run in runs) for _, name, _ in columns]
        lines.append(row("median", server, numbers, columns))
    summary = medians(rounds)
    lines.append(f"median {ratios_line(summary.__getitem__, meta)}")
    return "\n".join(lines)


def ratios_line(get: Any, meta: bool) -> str:
    text = (
        f"engine/floor: throughput {get('ratio'):.2f}, p99 {get('p99_ratio'):.2f}x, "
        f"CPU per request {get('cpu_ratio'):.2f}x"
    )
    return text + (f", end-to-end throughput {get('e2e_ratio'):.2f}" if meta else "")


def medians(rounds: list[Round]) -> dict[str, float]:
    """The medians over the rounds of each round's ratios."""
    return {name: round(median(getattr(one, name) for one in rounds), 3) for name in RATIOS}


def as_json(config: str, rounds: list[Round]) -> dict[str, object]:
    columns = COLUMNS + (META_COLUMNS if config == "meta" else ())
    figures = {
        f"{server}_{name}": round(median(figure(getattr(one, server), name) for one in rounds), 2)
        for server in ("floor", "engine")
        for _, name, _ in columns
    }
    runs = [
        {"floor": one.floor.as_dict(), "engine": one.engine.as_dict(), "ratio": round(one.ratio, 3)}
        for one in rounds
    ]
    return {"rounds": runs, "median": medians(rounds) | figures}


def rss_line(name: str, samples: list[int]) -> str:
    mib = [kib / 1024 for kib in samples]
    return f"{name}: RSS start {mib[0]:.1f} MiB, end {mib[-1]:.1f} MiB, max {max(mib):.1f} MiB"


def print_results(results: list[dict], args: argparse.Namespace, loads: tuple[str, str]) -> None:
    """Every table and figure, then the JSON line (also written to --json)."""
    print(f"load average before: {loads[0]}   after: {loads[1]}")
    codes = ", distinct codes" if args.distinct_codes else ""
    print(
        f"wrk: {args.threads} thread(s), {args.connections} connections, {args.seconds:g} s "
        f"per run, {args.slots} contacts interleaved{codes}"
    )
    out: dict[str, Any] = {"benchmark": "webhooks", "load_before": loads[0], "load_after": loads[1]}
    out["args"] = {key: str(value) for key, value in vars(args).items()}
    for result in results:
        config, rounds = result["config"], result["rounds"]
        entry: dict[str, Any] = as_json(config, rounds) if rounds else {}
        if rounds:
            print(table(config, rounds))
            for server in ("floor", "engine"):
                samples = [kib for one in rounds for kib in getattr(one, server).rss_kib]
                print(rss_line(f"{server} over the rounds", samples))
        if "session_bytes" in result:
            sizes = json.dumps(result["session_bytes"])
            print(f"idle session after the first answer (Redis MEMORY USAGE, bytes): {sizes}")
        for key in ("profile", "floor_profile", "long_run"):
            if key in result:
                print(result[key]["text"])
        print(f"log lines at WARNING or above: {json.dumps(result['logs'])}")
        print(f"code measured ({config}): {json.dumps(result['code'])}")
        kept = ("code", "session_bytes", "profile", "floor_profile", "long_run", "logs")
        out[config] = entry | {key: result[key] for key in kept if key in result}
    line = json.dumps(out, ensure_ascii=False)
    print(line)
    if args.json:
        args.json.write_text(line + "\n")
