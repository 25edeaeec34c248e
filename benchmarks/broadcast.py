"""Benchmark: a broadcast to 10,000 parents at a capped fake Twilio, killed and resumed.

    python benchmarks/broadcast.py [--recipients 10000] [--rate 50] [--kill-at 0.4]

Everything runs as in production, as separate processes on loopback: a fake Twilio
Messages API capped at `--rate` per second (benchmarks/fake_twilio.py, its own uvicorn
process); `palabre serve --flows flows`, whose outbox worker sends at
PALABRE_RATE_TWILIO_SMS=<rate>/second; and `palabre broadcast school_notice --to
parents.csv --yes`, which feeds the outbox. The CSV has one distinct DR Congo number per
line (+24381...), in French, Arabic and English, and their broadcast consent is imported
first (`palabre contacts consent-import`). When the fake has accepted `--kill-at` of the
recipients, the broadcast process gets SIGKILL (no chance to tidy up); then `palabre
broadcast resume ID` runs to the end, and `palabre broadcast status ID --json` must say
that every message was sent.

Why the figures can be trusted: they are counted where the messages land. The fake
records each accepted request's `To` and arrival time, and refuses (Twilio's 429, code
20429) and counts any request beyond the cap in a moving one-second window. So:
  - exactly once: every recipient's count of accepted messages is 1 (duplicates and
    missing are counted from the fake's records, not from Palabre's database);
  - never above the cap: no refusal, and the busiest closed one-second window of arrivals
    holds at most the cap;
  - the rate: overall, (accepted - 1) / (last arrival - first arrival), the kill and the
    resume's start-up included; steady, the same over the arrivals between the 5th and the
    95th percentile of their times, less the first pause (over 1 s without an arrival)
    that begins after the kill, if any: the restart's. Every pause is listed. Goal: the
    steady rate is at least 95 % of the cap;
  - memory: VmRSS of `palabre serve`, the killed broadcast and the resume, read from /proc
    every second; first, middle, last and max of the samples taken while the fake was
    receiving, less each process's first START_SECONDS (its interpreter loading). Flat
    means the second half's max is within 10 % of the middle sample.
The fake's CPU is reported, so that one can see it was not the bottleneck. Exit status 1
when a goal is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import servers
from drain_outbox import busiest_second
from procstat import cpu_seconds, load_average, rss_kib
from provenance import code_state
from requests_file import ACCOUNT_SID
from servers import ROOT, SECRETS, Server, free_port, running, wait_until

FLOWS = str(ROOT / "flows")
SMS_FROM = "+15005550006"
LANGUAGES = {"fr": 5, "ar": 3, "en": 2}  # weights of the audience's languages
PARAMS = ("date=3 décembre", "message=Réunion des parents à 17 h.")
PAUSE = 1.0  # seconds without an arrival that make a pause
STEADY = (0.05, 0.95)  # the percentiles of arrival times the steady rate spans
RATE_GOAL, FLAT = 0.95, 0.10
SETUP_SECONDS = 300  # the most a broadcast may take to plan before its first send
START_SECONDS = 2.0  # a process's RSS while its interpreter loads is no measure
AUDIENCE, CONSENT = "parents.csv", "consent.csv"
SENDERS = ("serve", "broadcast", "resume")  # the processes whose RSS is watched
LABELS = {"serve": "serve", "broadcast": "broadcast (killed)", "resume": "resume", "fake": "fake"}


def number(n: int) -> str:
    return f"+24381{n:07d}"


def write_audience(folder: Path, count: int) -> None:
    """The parents (`telephone;langue;child;class`) and their consent (`address`)."""
    draw = random.Random(2026)
    languages = draw.choices(list(LANGUAGES), weights=list(LANGUAGES.values()), k=count)
    lines = ["telephone;langue;child;class"]
    lines += [f"{number(n)};{languages[n]};Enfant {n};CM{n % 2 + 1}" for n in range(count)]
    (folder / AUDIENCE).write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / CONSENT).write_text("address\n" + "\n".join(map(number, range(count))) + "\n")


def palabre_env(data: Path, api_url: str, rate: int) -> dict[str, str]:
    return {
        "PALABRE_SECRET": SECRETS["PALABRE_SECRET"],
        "PALABRE_DATA_DIR": str(data),
        "PALABRE_DEFAULT_REGION": "CD",
        "PALABRE_DISABLE_PLUGINS": "meta_cloud",
        "PALABRE_LOG_LEVEL": "WARNING",
        "PALABRE_RATE_TWILIO_SMS": f"{rate}/second",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": SECRETS["TWILIO_AUTH_TOKEN"],
        "TWILIO_SMS_FROM": SMS_FROM,
        "TWILIO_API_BASE": api_url,
        "PYTHONUNBUFFERED": "1",  # a killed broadcast's output is in its log, id included
    }


def palabre_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "palabre.cli", *args]


def run_palabre(work: Path, env: dict[str, str], *args: str) -> str:
    """Run one `palabre` command to its end; its output, or SystemExit with it."""
    log = work / f"{args[0]}-{args[1]}.log"
    with running(palabre_command(*args), env, log) as process:
        if process.wait(timeout=600) != 0:
            raise SystemExit(f"palabre {' '.join(args)} failed:\n{log.read_text()[-2000:]}")
    return log.read_text()


@contextmanager
def fake_twilio(work: Path, rate: int) -> Iterator[Server]:
    port = free_port()
    command = [sys.executable, str(servers.BENCH / "fake_twilio.py"), "--port", str(port)]
    with running([*command, "--cap", f"{rate}/second"], {}, work / "twilio.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/accepted", timeout=1), process, url)
        yield Server(process, url)


@contextmanager
def palabre_serve(work: Path, env: dict[str, str]) -> Iterator[Server]:
    port = free_port()
    command = palabre_command("serve", "--flows", FLOWS, "--port", str(port))
    with running(command, env, work / "serve.log") as process:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: httpx.get(url + "/readyz", timeout=1).raise_for_status(), process, url)
        yield Server(process, url)


@dataclass(frozen=True)
class Sample:
    at: float
    rss_kib: int
    cpu: float


class Sampler:
    """VmRSS and CPU seconds of each watched process, every `every` seconds, on a thread."""

    def __init__(self, every: float = 1.0) -> None:
        self.every = every
        self.pids: dict[str, int] = {}
        self.samples: dict[str, list[Sample]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def watch(self, name: str, pid: int) -> None:
        self.pids[name] = pid
        self.samples[name] = []
        self._take(name, pid)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for name, pid in list(self.pids.items()):
                self._take(name, pid)

    def _take(self, name: str, pid: int) -> None:
        kib = rss_kib(pid)
        if kib:  # 0: the process is gone
            self.samples[name].append(Sample(time.time(), kib, cpu_seconds(pid)))


@dataclass
class Timeline:
    """When the benchmark acted (Unix seconds, as the fake stamps arrivals)."""

    began: float = 0.0  # the broadcast command started
    killed: float = 0.0
    killed_at: int = 0  # messages the fake had accepted then
    ended: float = 0.0  # the resume exited: every message settled


def broadcast_and_kill(
    work: Path, env: dict[str, str], fake: Server, target: int, sampler: Sampler, seconds: float
) -> tuple[str, Timeline]:
    """Start the broadcast and SIGKILL it once the fake accepted `target` messages (at most
    `seconds` from now)."""
    args = ["broadcast", "school_notice", "--to", str(work / AUDIENCE), "--flows", FLOWS]
    args += ["--yes", *(part for param in PARAMS for part in ("--param", param))]
    log, times = work / "broadcast.log", Timeline(began=time.time())
    with running(palabre_command(*args), env, log) as process:
        sampler.watch("broadcast", process.pid)
        deadline = times.began + seconds
        while accepted_count(fake, target) < target:
            if process.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the broadcast stopped short:\n{log.read_text()[-2000:]}")
        process.kill()
        times.killed, times.killed_at = time.time(), accepted_count(fake, 0)
        process.wait()
    found = re.search(r"^broadcast ([0-9a-f]+) started", log.read_text(), re.MULTILINE)
    if found is None:
        raise SystemExit(f"no broadcast id in its output:\n{log.read_text()[-2000:]}")
    return found.group(1), times


def accepted_count(fake: Server, at_least: int) -> int:
    """The fake's count of accepted messages, once it is `at_least` (or after 2 s)."""
    params = {"at_least": at_least, "wait": 2 if at_least else 0}
    return int(httpx.get(fake.url + "/accepted", params=params, timeout=10).json()["accepted"])


def resume(
    work: Path, env: dict[str, str], broadcast_id: str, sampler: Sampler, seconds: float
) -> None:
    """Run `palabre broadcast resume ID` until every message is settled (at most `seconds`)."""
    log = work / "resume.log"
    command = palabre_command("broadcast", "resume", broadcast_id, "--flows", FLOWS)
    with running(command, env, log) as process:
        sampler.watch("resume", process.pid)
        if process.wait(timeout=seconds) != 0:
            raise SystemExit(f"the resume failed:\n{log.read_text()[-2000:]}")


@dataclass
class Run:
    """What the fake recorded, what Palabre says, and what the processes cost."""

    numbers: list[str]
    times: Timeline
    accepted: list[tuple[str, float]]  # (To, arrival), in arrival order
    refused: int
    status: dict[str, Any]
    samples: dict[str, list[Sample]]


def run(work: Path, args: argparse.Namespace) -> Run:
    """The whole scenario in `work`: consent, serve, broadcast, kill, resume, status."""
    write_audience(work, args.recipients)
    target = max(1, math.ceil(args.kill_at * args.recipients))
    with Sampler() as sampler, fake_twilio(work, args.rate) as fake:
        sampler.watch("fake", fake.pid)
        env = palabre_env(work / "data", fake.url, args.rate)
        print(run_palabre(work, env, "contacts", "consent-import", str(work / CONSENT)).strip())
        with palabre_serve(work, env) as served:
            sampler.watch("serve", served.pid)
            seconds = SETUP_SECONDS + 3 * args.recipients / args.rate  # far more than needed
            broadcast_id, times = broadcast_and_kill(work, env, fake, target, sampler, seconds)
            resume(work, env, broadcast_id, sampler, seconds)
            times.ended = time.time()
        stats = httpx.get(fake.url + "/stats", timeout=30).json()
        status = run_palabre(work, env, "broadcast", "status", broadcast_id, "--json")
    accepted = [(to, at) for to, at in stats["accepted"]]
    numbers = [number(n) for n in range(args.recipients)]
    report = json.loads(status.strip().splitlines()[-1])  # after any warning on stderr
    return Run(numbers, times, accepted, stats["refused"], report, sampler.samples)


@dataclass(frozen=True)
class Rss:
    """One process's VmRSS samples (KiB) while it was sending."""

    first: int
    middle: int
    last: int
    most: int
    late_most: int  # the peak of the second half

    @classmethod
    def of(cls, samples: list[Sample], sending: tuple[float, float]) -> Rss:
        """The samples taken within `sending`, once the process had loaded."""
        since = max(sending[0], samples[0].at + START_SECONDS)
        kib = [s.rss_kib for s in samples if since <= s.at <= sending[1]]
        kib = kib or [s.rss_kib for s in samples]
        middle = len(kib) // 2
        return cls(kib[0], kib[middle], kib[-1], max(kib), max(kib[middle:]))

    @property
    def flat(self) -> bool:
        return self.late_most <= self.middle * (1 + FLAT)

    def __str__(self) -> str:
        mib = (self.first, self.middle, self.last, self.most)
        return " / ".join(f"{kib / 1024:.1f}" for kib in mib) + " MiB"


def pauses(times: list[float]) -> list[tuple[float, float]]:
    """The stretches longer than PAUSE without an arrival."""
    return [(a, b) for a, b in pairwise(times) if b - a > PAUSE]


def steady_rate(times: list[float], killed: float) -> tuple[float, float]:
    """Arrivals per second between the STEADY percentiles, less the restart's pause (the
    first pause that begins after the kill); the rate, and the seconds taken out."""
    last = len(times) - 1
    low, high = times[int(STEADY[0] * last)], times[math.ceil(STEADY[1] * last)]
    inside = sum(1 for t in times if low <= t <= high)
    restart = next(((a, b) for a, b in pauses(times) if a >= killed), None)
    out = max(0.0, min(restart[1], high) - max(restart[0], low)) if restart else 0.0
    return (inside - 1) / (high - low - out), out


@dataclass
class Figures:
    """The benchmark's results, each one a goal or the context a reader needs."""

    recipients: int
    accepted: int
    twice: int  # recipients who got more than one message
    missing: int  # recipients who got none
    strangers: int  # addresses outside the audience that got one
    refused: int
    busiest: int  # arrivals in the busiest closed one-second window
    steady: float
    overall: float
    killed_at: int
    restart_pause: float
    pauses: list[tuple[float, float]]  # relative to the kill
    rss: dict[str, Rss]
    cpu: dict[str, tuple[float, float]]  # seconds, share of a core
    finished: bool  # `palabre broadcast status` agrees: all sent
    preparing: float  # from the command to the first arrival
    sending: float  # from the first arrival to the last
    wall: float


def figures_of(run: Run) -> Figures:
    received = Counter(to for to, _ in run.accepted)
    times = sorted(at for _, at in run.accepted)
    steady, restart = steady_rate(times, run.times.killed)
    return Figures(
        recipients=len(run.numbers),
        accepted=len(run.accepted),
        twice=sum(1 for n in run.numbers if received[n] > 1),
        missing=sum(1 for n in run.numbers if received[n] == 0),
        strangers=len(set(received) - set(run.numbers)),
        refused=run.refused,
        busiest=busiest_second(times),
        steady=steady,
        overall=(len(times) - 1) / (times[-1] - times[0]),
        killed_at=run.times.killed_at,
        restart_pause=restart,
        pauses=[(a - run.times.killed, b - a) for a, b in pauses(times)],
        rss={name: Rss.of(run.samples[name], (times[0], times[-1])) for name in SENDERS},
        cpu={name: cpu_of(run.samples[name]) for name in (*SENDERS, "fake")},
        finished=run.status["finished"] and run.status["messages"] == {"sent": len(run.numbers)},
        preparing=times[0] - run.times.began,
        sending=times[-1] - times[0],
        wall=run.times.ended - run.times.began,
    )


def cpu_of(samples: list[Sample]) -> tuple[float, float]:
    """CPU seconds at the last sample, and the share of a core over the process's life."""
    first, last = samples[0], samples[-1]
    return last.cpu, (last.cpu - first.cpu) / max(last.at - first.at, 1e-9)


def goals(f: Figures, cap: int) -> dict[str, bool]:
    """Each goal of the issue's "Done when", and whether it was met."""
    return {
        "every recipient reached": f.missing == 0 and f.accepted == f.recipients,
        "nobody reached twice": f.twice == 0 and f.strangers == 0,
        "never above the cap": f.refused == 0 and f.busiest <= cap,
        f"steady rate at least {RATE_GOAL:.0%} of the cap": f.steady >= RATE_GOAL * cap,
        "memory flat": all(rss.flat for rss in f.rss.values()),
        "`broadcast status`: finished, all sent": f.finished,
    }


def table(f: Figures, cap: int) -> list[str]:
    """The README's Markdown table."""
    rows = [
        ("Recipients reached (accepted by the fake)", f"{f.accepted:,} of {f.recipients:,}"),
        ("Reached twice or more / never / outsiders", f"{f.twice} / {f.missing} / {f.strangers}"),
        ("Refused beyond the cap (429, 20429)", str(f.refused)),
        ("Busiest 1-second window at the fake", f"{f.busiest} (cap {cap})"),
        ("Steady rate: p5–p95 of arrivals", f"{f.steady:.1f} msg/s, {f.steady / cap:.1%} of cap"),
        ("Overall rate: first to last arrival", f"{f.overall:.1f} msg/s, {f.overall / cap:.1%}"),
        (
            "Killed at (accepted by the fake then)",
            f"{f.killed_at:,} ({f.killed_at / f.recipients:.1%})",
        ),
        ("Restart pause taken out of the steady rate", f"{f.restart_pause:.1f} s"),
        ("Pauses > 1 s (start after the kill, length)", pauses_text(f.pauses)),
        ("Wall time: preparing + sending", wall_text(f)),
    ]
    rows += [(f"RSS {LABELS[name]}: first/middle/last/max", str(f.rss[name])) for name in SENDERS]
    rows.append(("CPU s (share of a core)", cpu_text(f.cpu)))
    return ["| Figure | Value |", "|---|---|", *(f"| {a} | {b} |" for a, b in rows)]


def pauses_text(found: list[tuple[float, float]]) -> str:
    return ", ".join(f"{start:+.1f} s: {length:.1f} s" for start, length in found) or "none"


def wall_text(f: Figures) -> str:
    return f"{f.wall:.0f} s: {f.preparing:.0f} s + {f.sending:.0f} s"


def cpu_text(cpu: dict[str, tuple[float, float]]) -> str:
    return ", ".join(f"{LABELS[name]} {s:.0f} ({share:.2f})" for name, (s, share) in cpu.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=10_000)
    parser.add_argument("--rate", type=int, default=50, help="the cap, messages per second")
    parser.add_argument("--kill-at", type=float, default=0.4, help="share of the recipients")
    parser.add_argument("--raw", type=Path, help="also write the arrivals and samples (JSON)")
    args = parser.parse_args()
    command = " ".join(["python", "benchmarks/broadcast.py", *sys.argv[1:]])
    load_before, state = load_average(), code_state()
    with tempfile.TemporaryDirectory(prefix="palabre-broadcast-") as folder:
        happened = run(Path(folder), args)
    if args.raw:
        args.raw.write_text(json.dumps(asdict(happened)))
    found = figures_of(happened)
    print(f"\ncommand: {command}")
    print(f"code: {state['commit']} {state['fingerprint']} (changed: {len(state['changed'])})")
    print(f"load average before: {load_before}   after: {load_average()}\n")
    print("\n".join(table(found, args.rate)))
    met = goals(found, args.rate)
    print("\n" + "\n".join(f"{'ok    ' if ok else 'MISSED'} {goal}" for goal, ok in met.items()))
    sys.exit(0 if all(met.values()) else 1)


if __name__ == "__main__":
    main()
