"""`overmind doctor`: is everything in place to run agents, and if not, what to do about it.

Each check ends ok, warn (worth knowing, nothing is broken) or fail (overmind cannot work
until it is fixed); every warn and fail comes with a line saying what to do. Exit code 1
when a check failed, else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import re
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import urllib.parse
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import anyio

from overmind_mcp import __version__
from overmind_mcp.console.common import Exit
from overmind_mcp.console.render import Out
from overmind_mcp.console.state import SCHEMA_VERSION, open_state
from overmind_mcp.models import LIVE
from overmind_mcp.runners.ray import probe
from overmind_mcp.settings import Settings
from overmind_mcp.supervision.foreign import live_owners, orphan_state

TESTED_CLAUDE = "2.1"
_VERSION_TIMEOUT_S = 20
_MARKS = {"ok": ("✓", "green"), "warn": ("!", "yellow"), "fail": ("✗", "red")}


@dataclass(slots=True)
class Check:
    name: str
    status: Literal["ok", "warn", "fail"]
    detail: str
    fix: str | None = None


def doctor(settings: Settings, args: argparse.Namespace) -> int:
    checks = [check_claude(settings.claude_bin), check_state_dir(settings.home)]
    checks += anyio.run(check_database, settings)
    checks += [check_port(args.port), check_node()]
    checks += check_ray(settings)
    out = Out(json_mode=args.json)
    failed = any(check.status == "fail" for check in checks)
    if args.json:
        out.json({"ok": not failed, "checks": [asdict(check) for check in checks]})
    else:
        width = max(len(check.name) for check in checks)
        for check in checks:
            mark, style = _MARKS[check.status]
            out.line(f"{mark} {check.name.ljust(width)}  {check.detail}", style if check.status != "ok" else None)
            if check.fix:
                out.line(f"  {' ' * width}  → {check.fix}", style)
        problems = sum(check.status != "ok" for check in checks)
        out.line("all good" if not problems else f"{problems} to look at", "bold")
    return Exit.PROBLEM if failed else Exit.OK


def check_claude(claude_bin: str) -> Check:
    path = shutil.which(claude_bin)
    if path is None:
        return Check(
            "claude",
            "fail",
            f"no Claude Code CLI at {claude_bin!r}" + ("" if os.sep in claude_bin else " on PATH"),
            "install it (npm install -g @anthropic-ai/claude-code) or set OVERMIND_CLAUDE_BIN to its path",
        )
    try:
        done = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("claude", "fail", f"{path} --version did not answer ({exc})", "reinstall Claude Code")
    found = re.search(r"\d+\.\d+\.\d+", done.stdout)
    if done.returncode != 0 or found is None:
        said = (done.stderr or done.stdout).strip()[:200]
        return Check("claude", "fail", f"{path} --version failed: {said or done.returncode}", "reinstall Claude Code")
    version = found.group()
    if not version.startswith(TESTED_CLAUDE + "."):
        return Check(
            "claude",
            "warn",
            f"{path}, version {version}; overmind is tested with {TESTED_CLAUDE}.x",
            f"install a {TESTED_CLAUDE}.x release if children misbehave (its stream-json may differ)",
        )
    return Check("claude", "ok", f"{path}, version {version}")


def check_state_dir(home: Path) -> Check:
    if not home.exists():
        parent = next((path for path in home.parents if path.exists()), Path("/"))
        if os.access(parent, os.W_OK | os.X_OK):
            return Check("state dir", "ok", f"{home} (not there yet; the first server creates it)")
        return Check("state dir", "fail", f"{home} does not exist and {parent} is not writable", _home_fix(home))
    if not home.is_dir():
        return Check("state dir", "fail", f"{home} is not a directory", _home_fix(home))
    if not os.access(home, os.W_OK | os.X_OK):
        return Check("state dir", "fail", f"{home} is not writable by this user", _home_fix(home))
    mode = stat.S_IMODE(home.stat().st_mode)
    if mode & 0o077:
        # Prompts, answers and whole transcripts live there.
        return Check("state dir", "warn", f"{home} can be read by other users (mode {mode:o})", f"chmod 700 {home}")
    return Check("state dir", "ok", str(home))


def _home_fix(home: Path) -> str:
    return f"fix the permissions of {home}, or set OVERMIND_HOME to a directory you own"


def probe_database(path: Path) -> tuple[int, str, str]:
    """Schema version, journal mode and integrity verdict, read without a server's help (read-only)."""
    with contextlib.closing(sqlite3.connect(f"file:{urllib.parse.quote(str(path))}?mode=ro", uri=True)) as db:
        version = db.execute("PRAGMA user_version").fetchone()[0]
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
        verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
    return int(version), str(journal), str(verdict)


async def check_database(settings: Settings) -> list[Check]:
    path = settings.database_path
    if not path.exists():
        return [Check("database", "ok", f"{path} (none yet; the first server creates it)")]
    try:
        version, journal, verdict = await anyio.to_thread.run_sync(probe_database, path)
    except sqlite3.Error as exc:
        return [Check("database", "fail", f"{path}: {exc}", f"move {path} aside; the next server starts a new one")]
    if verdict != "ok":
        return [
            Check(
                "database",
                "fail",
                f"{path}: the integrity check says {verdict[:200]}",
                f"stop every server, then recover it: sqlite3 {path} .recover | sqlite3 repaired.db",
            )
        ]
    if version < SCHEMA_VERSION:
        fix = "start a server (overmind-mcp) once: it upgrades the database"
        return [Check("database", "fail", f"{path}: schema {version}, this overmind reads {SCHEMA_VERSION}", fix)]
    if version > SCHEMA_VERSION:
        fix = "upgrade overmind-mcp (a newer version wrote this database)"
        return [Check("database", "fail", f"{path}: schema {version}, newer than this overmind's", fix)]
    checks = [
        Check("database", "ok", f"{path}, schema {version}, integrity ok")
        if journal.lower() == "wal"
        else Check("database", "warn", f"{path}: journal mode {journal}", "start a server: it sets WAL mode")
    ]
    async with open_state(settings) as state:
        servers = [server for server in await state.servers() if server.alive]
        live = await state.store.missions(statuses=tuple(LIVE))
        owners = await live_owners(state.store, live)
    pids = ", ".join(f"pid {server.pid}" for server in servers)
    checks.append(Check("servers", "ok", f"{len(servers)} running" + (f" ({pids})" if pids else "")))
    stale = [kind for row in live if (kind := orphan_state(row, owners))]
    if stale:
        running = stale.count("orphaned")
        checks.append(
            Check(
                "missions",
                "warn",
                f"{len(stale)} marked running whose server is gone ({running} still running, "
                f"{len(stale) - running} ended unrecorded)",
                "start any overmind-mcp server on this state directory (open Claude Code): "
                "it adopts the running ones and records how the others ended",
            )
        )
    else:
        checks.append(Check("missions", "ok", f"{len(live)} running, every one supervised"))
    return checks


def check_port(port: int, host: str = "127.0.0.1") -> Check:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # As an HTTP server binds: a port in TIME_WAIT is free to it.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return Check(
                    "port",
                    "warn",
                    f"{host}:{port} is in use (the HTTP mode's default)",
                    f"stop what listens there (ss -ltnp 'sport = :{port}') or serve HTTP on another port",
                )
            return Check("port", "warn", f"cannot bind {host}:{port}: {exc.strerror}", "check the network setup")
    return Check("port", "ok", f"{host}:{port} is free for the HTTP mode")


def check_node() -> Check:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        missing = " and ".join(name for name, path in (("node", node), ("npm", npm)) if path is None)
        return Check(
            "node", "warn", f"no {missing} on PATH", "only the end-to-end tests need them: install Node.js 20+ with npm"
        )
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=_VERSION_TIMEOUT_S, stdin=subprocess.DEVNULL
        ).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        version = "?"
    return Check("node", "ok", f"node {version} and npm (for the end-to-end tests)")


def check_ray(settings: Settings) -> list[Check]:
    """The configured Ray cluster (OVERMIND_RUNNER=ray or OVERMIND_RAY_ADDRESS): reachable, its nodes, their
    overmind-mcp, and whether children there can call back; nothing when no cluster is configured."""
    if settings.runner != "ray" and settings.ray_address is None:
        return []
    address = settings.ray_address or "auto"
    fix = "start the cluster (ray start --head), or set OVERMIND_RAY_ADDRESS to its GCS address (host:port)"
    try:
        done = subprocess.run(
            [sys.executable, "-m", "overmind_mcp.runners.ray.probe", address, str(settings.ray_start_timeout_s)],
            capture_output=True,
            text=True,
            # A backstop: the probe bounds its own connection and each node's answer.
            timeout=settings.ray_start_timeout_s + probe.NODE_TIMEOUT_S + 30,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return [Check("ray", "fail", f"the Ray cluster at {address} did not answer", fix)]
    if done.returncode != 0:
        said = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
        return [Check("ray", "fail", f"cannot connect to the Ray cluster at {address}: {said[0][:300]}", fix)]
    report = probe.ClusterReport.model_validate_json(done.stdout.strip().splitlines()[-1])
    alive = [node for node in report.nodes if node.alive]
    dead = len(report.nodes) - len(alive)
    summary = f"{address}: {len(alive)} node{'s' if len(alive) != 1 else ''} alive" + (f", {dead} dead" if dead else "")
    checks = [
        Check("ray", "ok", summary)
        if alive
        else Check("ray", "fail", summary, "start the cluster's nodes (ray start --address=<head>)")
    ]
    broken = [node for node in alive if node.error or node.version != __version__]
    if broken:
        found = "; ".join(f"{node.label}: {node.error or node.version}" for node in broken)
        checks.append(
            Check(
                "ray nodes",
                "fail",
                f"overmind-mcp {__version__} is not what these nodes have: {found}",
                f"install overmind-mcp {__version__} and its ray extra on every node: pip install 'overmind-mcp[ray]'",
            )
        )
    elif alive:
        checks.append(Check("ray nodes", "ok", f"overmind-mcp {__version__} on every live node"))
    elsewhere = sorted({node.ip for node in alive} - {report.coordinator_ip})
    if elsewhere:
        checks.append(
            Check(
                "ray callback",
                "warn",
                f"nodes on other hosts ({', '.join(elsewhere)}) cannot reach this server's loopback endpoint: "
                "their children cannot use overmind's tools",
                "serve where the nodes reach it (overmind-mcp serve --http --host <address> --allow-remote; each "
                "child has its own token), or spawn their children with delegate=false",
            )
        )
    return checks
