"""Benchmark 7: what durability costs per mission, in time and in bytes.

Short raw missions (`/bin/echo`) run one after another through the supervisor in process
(spawn → wait → result, no MCP: the store's share is easier to see without the transport).
Two ways to the time:

* instrumented: every `Store` coroutine is wrapped (in this process only; the core is not
  edited) with `time.perf_counter`, and the time spent awaiting its writes and its reads is
  summed per mission;
* A/B: the same missions through the same supervisor whose store writes nothing
  (`NullStore`: insert, update and add_event return at once), interleaved round by round.

Bytes: the state directory before and after the missions, each time with the write-ahead log
checkpointed (TRUNCATE) first: the database's growth, the WAL's size before that checkpoint,
and the missions' directories (output and stderr files), both as file sizes and as disk blocks.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

from overmind_mcp.models import SpawnRequest
from overmind_mcp.settings import Settings
from overmind_mcp.storage import missions as store_module
from overmind_mcp.supervision import supervisor as supervisor_module
from overmind_mcp.supervision.supervisor import Supervisor
from tools.bench.common import FAKE_CLAUDE, Config, alternate, median, row

RAW_ARGV = ["/bin/echo", "mission accomplished"]
WRITES = ("insert", "update", "add_event", "register_server", "server_stopped", "claim", "prune")
READS = ("get", "find_by_name", "missions", "descendants", "counts_by_status", "total_cost", "servers", "events")


class NullStore(store_module.Store):
    """A store that keeps nothing: the supervisor without durability (reads find an empty database)."""

    async def insert(self, row: store_module.MissionRow) -> None:
        return None

    async def update(self, mission_id: str, **values: Any) -> None:
        return None

    async def add_event(self, mission_id: str, at: float, kind: str, data: dict[str, Any]) -> None:
        return None

    async def register_server(self, *args: Any) -> None:
        return None

    async def server_stopped(self, *args: Any) -> None:
        return None

    async def prune(self, ended_before: float) -> list[store_module.MissionRow]:
        return []


class StoreTimer:
    """Seconds spent awaiting the store's writes and reads, and how many calls of each."""

    def __init__(self) -> None:
        self.seconds = {"write": 0.0, "read": 0.0}
        self.calls = {"write": 0, "read": 0}

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap the Store class's coroutines for the duration of the block."""
        originals: dict[str, Callable[..., Awaitable[Any]]] = {}
        for kind, names in (("write", WRITES), ("read", READS)):
            for name in names:
                original = getattr(store_module.Store, name)
                originals[name] = original
                setattr(store_module.Store, name, self._timed(kind, original))
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(store_module.Store, name, original)

    def _timed(self, kind: str, original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await original(*args, **kwargs)
            finally:
                self.seconds[kind] += time.perf_counter() - started
                self.calls[kind] += 1

        return timed


@contextlib.contextmanager
def store_class(cls: type[store_module.Store]) -> Iterator[None]:
    """Make the supervisor open `cls` instead of the real Store (benchmark process only)."""
    original = supervisor_module.Store
    supervisor_module.Store = cls  # type: ignore[misc]
    try:
        yield
    finally:
        supervisor_module.Store = original  # type: ignore[misc]


def written_bytes() -> int:
    """Bytes this process has passed to write(2) so far: here, the store's (children write their own files)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise RuntimeError("no wchar in /proc/self/io")


def checkpoint(database: Path) -> None:
    with contextlib.closing(sqlite3.connect(database)) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def sizes(home: Path) -> dict[str, int]:
    """Bytes in the state directory: the database files, and the missions' files (apparent and on disk)."""
    database = home / "overmind.db"
    wal = database.with_name(database.name + "-wal")
    found = {"db": database.stat().st_size, "wal": wal.stat().st_size if wal.exists() else 0}
    apparent = allocated = 0
    for directory, _subdirectories, files in os.walk(home / "missions"):
        allocated += Path(directory).stat().st_blocks * 512
        for name in files:
            info = (Path(directory) / name).stat()
            apparent += info.st_size
            allocated += info.st_blocks * 512
    found["mission_files"], found["mission_files_on_disk"] = apparent, allocated
    return found


async def missions(supervisor: Supervisor, count: int) -> float:
    """Run `count` short missions one after another; seconds per mission."""
    started = time.perf_counter()
    for _ in range(count):
        spawned = await supervisor.spawn(SpawnRequest(command=RAW_ARGV))
        await supervisor.wait([spawned.id], timeout_s=60)
        if (await supervisor.result(spawned.id)).status != "succeeded":
            raise RuntimeError("a mission failed")
    return (time.perf_counter() - started) / count


async def durable_round(home: Path, count: int, timer: StoreTimer) -> dict[str, float]:
    settings = Settings(home=home, claude_bin=str(FAKE_CLAUDE), retention_days=0)
    with timer.installed():
        async with Supervisor.running(settings) as supervisor:
            await missions(supervisor, 3)  # warm-up: first-use work is not per-mission cost
            checkpoint(settings.database_path)
            before = sizes(home)
            timer.reset()
            wchar = written_bytes()
            per_mission = await missions(supervisor, count)
            wchar = written_bytes() - wchar
            wal_peak = sizes(home)["wal"]
            checkpoint(settings.database_path)
            after = sizes(home)
    return {
        "wall_ms": per_mission * 1000,
        "store_write_ms": timer.seconds["write"] * 1000 / count,
        "store_read_ms": timer.seconds["read"] * 1000 / count,
        "store_writes": timer.calls["write"] / count,
        "store_reads": timer.calls["read"] / count,
        "db_bytes": (after["db"] - before["db"]) / count,
        "written_bytes": wchar / count,
        "wal_bytes_before_checkpoint": wal_peak / count,
        "mission_file_bytes": (after["mission_files"] - before["mission_files"]) / count,
        "mission_disk_bytes": (after["mission_files_on_disk"] - before["mission_files_on_disk"]) / count,
    }


async def null_round(home: Path, count: int) -> dict[str, float]:
    settings = Settings(home=home, claude_bin=str(FAKE_CLAUDE), retention_days=0)
    with store_class(NullStore):
        async with Supervisor.running(settings) as supervisor:
            await missions(supervisor, 3)
            wchar = written_bytes()
            per_mission = await missions(supervisor, count)
            return {"wall_ms": per_mission * 1000, "written_bytes": (written_bytes() - wchar) / count}


async def run(config: Config) -> dict[str, Any]:
    count, rounds = (20, 1) if config.quick else (1000, 3)
    timer = StoreTimer()
    durable: list[dict[str, float]] = []
    null: list[dict[str, float]] = []
    for number in range(rounds):
        for variant in alternate(number, "durable", "null"):
            home = config.scratch / f"{variant}-{number}"
            if variant == "durable":
                durable.append(await durable_round(home, count, timer))
            else:
                null.append(await null_round(home, count))

    def figure(key: str) -> float:
        return median([entry[key] for entry in durable])

    walls = [entry["wall_ms"] for entry in durable]
    null_walls = [entry["wall_ms"] for entry in null]
    written = [d["written_bytes"] - n["written_bytes"] for d, n in zip(durable, null, strict=True)]
    writes = [entry["store_write_ms"] for entry in durable]
    bytes_per = [entry["db_bytes"] + entry["mission_disk_bytes"] for entry in durable]
    rows = [
        row(
            f"durability: {count} short missions, wall time per mission",
            ours=median(walls),
            baseline=median(null_walls),
            unit="ms",
            baseline_name="same supervisor, store that writes nothing",
            spread_of="per-round difference (ms)",
            spread_values=[d - n for d, n in zip(walls, null_walls, strict=True)],
        ),
        row(
            "durability: time awaiting store writes per mission (instrumented)",
            ours=median(writes),
            baseline=None,
            unit="ms",
            baseline_name="",
            spread_of="per-round (ms)",
            spread_values=writes,
            note=f"{figure('store_writes'):.0f} writes and {figure('store_reads'):.0f} reads a mission; "
            f"reads {figure('store_read_ms'):.3f} ms",
        ),
        row(
            "durability: bytes added to the state directory per mission (on disk)",
            ours=median(bytes_per),
            baseline=None,
            unit="B",
            baseline_name="",
            spread_of="per-round (B)",
            spread_values=bytes_per,
            digits=0,
            note=f"database {figure('db_bytes'):.0f} B after checkpoint (WAL before it "
            f"{figure('wal_bytes_before_checkpoint'):.0f} B), output+stderr files "
            f"{figure('mission_file_bytes'):.0f} B in {figure('mission_disk_bytes'):.0f} B of disk blocks",
        ),
        row(
            "durability: bytes the store writes per mission (write(2) calls: database, WAL, checkpoints)",
            ours=median(written),
            baseline=None,
            unit="B",
            baseline_name="",
            spread_of="per-round (B)",
            spread_values=written,
            digits=0,
            note="wchar of the supervisor's process, durable − no-op store; not fsynced (synchronous=NORMAL)",
        ),
    ]
    return {"rows": rows, "details": {"durable": durable, "null": null, "missions": count}}
