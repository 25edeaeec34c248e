"""A long run of one server (`--messages`): its RSS, read every `--rss-every` requests.

wrk runs in consecutive segments over one request file, each going on where the last
stopped (replay.lua's offset), so that after each segment the number of requests served
is known exactly when VmRSS is read; it is also sampled every second throughout.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from procstat import RssSampler, rss_kib
from servers import Server
from wrk import run_wrk

MARGIN = 1.25  # more requests in the file than asked for: the last segment overshoots


def long_run(
    server: Server,
    path: str,
    messages: int,
    every: int,
    rate: float,
    connections: int,
    make_file: Callable[[int], Path],
) -> dict[str, object]:
    """Serve `messages` requests from new contacts; RSS start, end, max and per segment."""
    file = make_file(int(messages * MARGIN) + every)
    done, offset, errors, wrapped = 0, 0, 0, 0
    points = [(0, rss_kib(server.pid))]
    began = time.monotonic()
    try:
        with RssSampler(server.pid, every=1.0) as sampler:
            while done < messages:
                seconds = max(1.0, min(every, messages - done) / max(rate, 1.0))
                result = run_wrk(
                    server.url + path,
                    file,
                    seconds=seconds,
                    connections=connections,
                    offset=offset,
                )
                done += result.requests
                offset = int(result.summary["next_offset"])
                errors += result.errors
                wrapped += int(result.summary["wrapped"])
                rate = result.throughput
                points.append((done, rss_kib(server.pid)))
                print(
                    f"  long run: {done} messages, RSS {points[-1][1] // 1024} MiB", file=sys.stderr
                )
    finally:
        file.unlink()
    samples = sampler.samples
    took = time.monotonic() - began
    mib = [kib / 1024 for kib in samples]
    text = (
        f"long run: {done} messages in {took:.0f} s ({errors} errors, {wrapped} wraps): RSS "
        f"start {mib[0]:.1f} MiB, end {mib[-1]:.1f} MiB, max {max(mib):.1f} MiB\n  RSS after "
        + ", ".join(f"{n}: {kib / 1024:.1f}" for n, kib in points)
    )
    return {
        "text": text,
        "messages": done,
        "errors": errors,
        "rss_kib": {"start": samples[0], "end": samples[-1], "max": max(samples)},
        "points": points,
    }
