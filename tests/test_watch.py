"""The inotify watcher: one file watched by several tasks at once (a log panel and the tree that reads it)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from overmind_mcp.runners.local.watch import FileWatcher

pytestmark = pytest.mark.anyio


async def test_each_watch_of_one_file_is_woken_and_the_last_to_leave_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "output.jsonl"
    path.write_bytes(b"")
    watcher = FileWatcher()
    async with anyio.create_task_group() as task_group:
        task_group.start_soon(watcher.run)
        with watcher.watch(path) as first:
            with watcher.watch(path) as second:
                with path.open("ab") as output:
                    output.write(b"one\n")
                with anyio.fail_after(5):
                    await first.wait()
                    await second.wait()
            # The second watch has gone; the first still hears the file.
            with path.open("ab") as output:
                output.write(b"two\n")
            with anyio.fail_after(5):
                await first.wait()
        task_group.cancel_scope.cancel()
