"""Ports and services per isolated mission, from the project's `.overmind.toml` (or `.overmind.yml`).

Real repositories, real sockets on 127.0.0.1, real service processes; the ports are leased in
the room's SQLite database, and the test that leases from several processes uses several.
"""

from __future__ import annotations

import json
import random
import socket
import subprocess
import sys
from pathlib import Path

import anyio
import psutil
import pytest

from overmind_mcp.errors import InvalidRequest, SpawnError
from overmind_mcp.models import SpawnRequest
from overmind_mcp.supervision.supervisor import Supervisor
from overmind_mcp.workspaces import project
from overmind_mcp.workspaces.records import Records
from tests.test_worktrees import branches, git, worktree_of

pytestmark = pytest.mark.anyio

FETCH_PAGE = """
import os, urllib.request
page = urllib.request.urlopen(f"http://127.0.0.1:{os.environ['PORT']}/index.html")
print(page.read().decode(), end="")
"""
# What a mission prints of its environment: the ports it was given.
SHOW_PORTS = [
    sys.executable,
    "-c",
    "import json, os; print(json.dumps({k: v for k, v in os.environ.items() if k.endswith('PORT')}))",
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("print('hello')\n")
    git(root, "add", ".")
    git(root, "commit", "-qm", "start")
    return root


def free_range(size: int) -> tuple[int, int]:
    """A run of `size` ports nothing listens on, for a range of our own (other tests run beside us)."""
    for low in range(random.randrange(43000, 50000), 60000, 97):
        if all(_free(port) for port in range(low, low + size)):
            return low, low + size - 1
    raise LookupError("no free run of ports")


def _free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def ports_of(supervisor: Supervisor, repo: Path, name: str, **options: object) -> dict[str, str]:
    spawned = await supervisor.spawn(
        SpawnRequest(command=SHOW_PORTS, name=name, cwd=str(repo), isolation="worktree", **options)
    )
    [done] = (await supervisor.wait([spawned.id], timeout_s=30)).done
    assert done.status == "succeeded", done
    return json.loads(done.text or "{}")


async def leased(supervisor: Supervisor) -> list[int]:
    return [lease.port for lease in await (await supervisor.worktrees.records()).ports()]


async def test_two_missions_of_one_project_get_different_ports(supervisor: Supervisor, repo: Path) -> None:
    low, high = free_range(4)
    (repo / ".overmind.toml").write_text(f'[isolation]\nport_range = "{low}-{high}"\n[services.web]\n[services.api]\n')
    first = await supervisor.spawn(
        SpawnRequest(command=["sleep", "30"], name="first", cwd=str(repo), isolation="worktree")
    )
    # While the first holds the two lowest, the second gets the next two; both ends of the range are used.
    second = await ports_of(supervisor, repo, "second")
    assert second == {"WEB_PORT": str(low + 2), "API_PORT": str(high)}
    assert await leased(supervisor) == [low, low + 1]  # the second's are released with it
    await supervisor.kill([first.id])
    assert await leased(supervisor) == []
    # A port something else listens on is skipped, and `PORT` is given when there is one service.
    (repo / ".overmind.toml").write_text(f'[isolation]\nport_range = "{low}-{high}"\n[services.web]\n')
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", low))
        busy.listen()
        assert await ports_of(supervisor, repo, "third") == {"WEB_PORT": str(low + 1), "PORT": str(low + 1)}


async def test_an_exhausted_range_is_a_clear_error_and_nothing_leaks(supervisor: Supervisor, repo: Path) -> None:
    low, high = free_range(2)
    (repo / ".overmind.toml").write_text(f'[isolation]\nport_range = "{low}-{high}"\n[services.web]\n[services.db]\n')
    holder = await supervisor.spawn(
        SpawnRequest(command=["sleep", "30"], name="holder", cwd=str(repo), isolation="worktree")
    )
    with pytest.raises(SpawnError, match=rf"no free port left in {low}-{high}.*widen \[isolation\] port_range"):
        await supervisor.spawn(SpawnRequest(command=["true"], name="starved", cwd=str(repo), isolation="worktree"))
    # Nothing of the refused spawn is left: no mission, no worktree, no branch, no port, no record.
    assert [mission.name for mission in (await supervisor.ps()).missions] == ["holder"]
    assert not worktree_of(repo, "starved").exists() and branches(repo) == ["main", "overmind/holder"]
    assert await leased(supervisor) == [low, high]
    assert [lease.name for lease in await supervisor.worktrees.leases()] == ["holder"]
    await supervisor.kill([holder.id])
    assert await leased(supervisor) == []


async def test_a_command_service_runs_for_the_mission_in_its_worktree_and_ends_with_it(
    supervisor: Supervisor, repo: Path
) -> None:
    low, high = free_range(3)
    (repo / ".overmind.toml").write_text(
        f'[isolation]\nport_range = "{low}-{high}"\n'
        '[services.web]\ncommand = ["python3", "-m", "http.server", "--bind", "127.0.0.1", "{port}"]\n'
    )
    (repo / "index.html").write_text("served from the worktree\n")
    git(repo, "add", "index.html")
    git(repo, "commit", "-qm", "page")
    fetch = [sys.executable, "-c", FETCH_PAGE]
    spawned = await supervisor.spawn(SpawnRequest(command=fetch, name="client", cwd=str(repo), isolation="worktree"))
    [done] = (await supervisor.wait([spawned.id], timeout_s=30)).done
    assert (done.status, done.text) == ("succeeded", "served from the worktree")
    # The service ended with the mission: its process is gone, its port free and released.
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(low) in (p.info["cmdline"] or [])]
    assert _free(low) and await leased(supervisor) == []
    assert (await (await supervisor.worktrees.records()).services()) == []


async def test_a_service_that_never_listens_fails_the_spawn_and_is_rolled_back(
    supervisor: Supervisor, repo: Path
) -> None:
    low, high = free_range(2)
    (repo / ".overmind.toml").write_text(
        f'[isolation]\nport_range = "{low}-{high}"\n'
        '[services.web]\ncommand = ["python3", "-m", "http.server", "{port}"]\n'
        '[services.broken]\ncommand = ["sh", "-c", "echo cannot start >&2; exit 3"]\n'
    )
    with pytest.raises(SpawnError, match=r"service 'broken' ended \(exit code 3\).*cannot start"):
        await supervisor.spawn(SpawnRequest(command=["true"], name="doomed", cwd=str(repo), isolation="worktree"))
    # The first service had started: it was ended, and every port released.
    assert await leased(supervisor) == [] and _free(low)
    assert not worktree_of(repo, "doomed").exists() and branches(repo) == ["main"]
    assert (await supervisor.ps()).missions == []


async def test_a_docker_service_with_no_daemon_is_a_clear_error(supervisor: Supervisor, repo: Path) -> None:
    daemon = await anyio.run_process(["docker", "info"], check=False) if _has_docker() else None
    if daemon is not None and daemon.returncode == 0:
        pytest.skip("a Docker daemon answers here: this test is of the error when none does")
    low, high = free_range(2)
    (repo / ".overmind.toml").write_text(
        f'[isolation]\nport_range = "{low}-{high}"\n[services.db]\ndocker = "postgres:16"\nport = 5432\n'
    )
    expected = "no Docker daemon answers" if daemon is not None else "docker command is not installed"
    with pytest.raises(SpawnError, match=rf"service 'db' runs in Docker \(postgres:16\), but {expected}"):
        await supervisor.spawn(SpawnRequest(command=["true"], name="needs-db", cwd=str(repo), isolation="worktree"))
    assert await leased(supervisor) == [] and branches(repo) == ["main"]


def _has_docker() -> bool:
    return subprocess.run(["sh", "-c", "command -v docker"], capture_output=True).returncode == 0


async def test_the_original_overmind_yml_is_read_with_a_yaml_parser(supervisor: Supervisor, repo: Path) -> None:
    low, high = free_range(2)
    (repo / ".overmind.yml").write_text(
        "# the original Overmind's project file\n"
        "isolation:\n"
        "  strategy: ports\n"
        f"  port_range: {low}-{high}\n"
        "services:\n"
        "  web:\n"
        "    port: 3000\n"
        '    command: "python3 -m http.server {port}"\n'
    )
    assert await ports_of(supervisor, repo, "yaml") == {"WEB_PORT": str(low), "PORT": str(low)}


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('[services.web]\ncommand = "npm run dev && echo"\n', "uses shell syntax (&&)"),
        ('[isolation]\nport_range = "4000-3000"\n', "must be a range within 1-65535, lowest first"),
        ("[services.db]\ndocker = 'postgres'\n", "a `docker` service needs `port`"),
        ("[services.web]\nport = 'x'\ncolour = 1\n", "services.web.colour: Extra inputs are not permitted"),
        ("[services\n", "not valid TOML"),
    ],
)
def test_a_bad_project_file_says_what_to_fix(tmp_path: Path, text: str, said: str) -> None:
    (tmp_path / ".overmind.toml").write_text(text)
    with pytest.raises(InvalidRequest, match=r"\.overmind\.toml: ") as raised:
        project.load(tmp_path)
    assert said in str(raised.value)


async def test_a_bad_project_file_refuses_the_spawn(supervisor: Supervisor, repo: Path) -> None:
    (repo / ".overmind.toml").write_text("[services.web]\ncommand = []\n")
    with pytest.raises(InvalidRequest, match="empty argv list"):
        await supervisor.spawn(SpawnRequest(command=["true"], cwd=str(repo), isolation="worktree"))
    assert branches(repo) == ["main"]


async def test_leased_env_variables_cannot_be_overridden(supervisor: Supervisor, repo: Path) -> None:
    low, high = free_range(1)
    (repo / ".overmind.toml").write_text(f'[isolation]\nport_range = "{low}-{high}"\n[services.web]\n')
    with pytest.raises(InvalidRequest, match="env PORT, WEB_PORT"):
        await supervisor.spawn(
            SpawnRequest(command=["true"], cwd=str(repo), isolation="worktree", env={"PORT": "1", "WEB_PORT": "2"})
        )
    assert await leased(supervisor) == [] and branches(repo) == ["main"]


_LEASER = """
import sys, anyio
from pathlib import Path
from overmind_mcp.workspaces.records import Records
from overmind_mcp.workspaces.services import port_is_free

async def main(home, who, low, high):
    records = await Records.open(Path(home))
    try:
        for index in range(10):
            got = await records.lease_ports(f"{who}-{index}", "repo", ["web"], (int(low), int(high)), port_is_free)
            print(got["web"], flush=True)
    finally:
        await records.close()

anyio.run(main, *sys.argv[1:])
"""


async def test_ports_are_leased_once_across_processes(tmp_path: Path) -> None:
    low, high = free_range(40)
    got: list[int] = []

    async def lease(who: str) -> None:
        done = await anyio.run_process([sys.executable, "-c", _LEASER, str(tmp_path), who, str(low), str(high)])
        got.extend(int(line) for line in done.stdout.split())

    with anyio.fail_after(60):
        async with anyio.create_task_group() as leasers:
            for index in range(4):
                leasers.start_soon(lease, f"p{index}")
    assert sorted(got) == list(range(low, low + 40))  # forty leases, forty different ports, lowest first
    records = await Records.open(tmp_path)
    try:
        assert len(await records.ports()) == 40
    finally:
        await records.close()
