"""Reading a child's output file as it grows: line by line with offsets, or a chunk's lines at once."""

from __future__ import annotations

import random
from collections import deque
from pathlib import Path

import pytest

from overmind_mcp.core.events import note_line
from overmind_mcp.core.spec import CommandTask, MissionSpec
from overmind_mcp.core.status import Status
from overmind_mcp.providers.command import CommandProvider
from overmind_mcp.runners.local.output import CHUNK_BYTES, MAX_LINE_BYTES, LineReader
from overmind_mcp.storage.missions import MissionRow
from overmind_mcp.supervision.lifecycle import ingest
from overmind_mcp.supervision.mission import Mission

pytestmark = pytest.mark.anyio


def awkward_output() -> bytes:
    """Lines of every shape a child prints: empty, CRLF, a lone CR, invalid UTF-8, one overlong, none at the end."""
    rng = random.Random(22)
    lines = [b"", b"windows\r", b"progress 10%\rprogress 20%", b"\xff\xfe broken", "naïve ✓".encode()]
    lines += [b"x" * rng.randrange(0, 300) for _ in range(3000)]
    lines.insert(1500, b"y" * (MAX_LINE_BYTES + CHUNK_BYTES // 3))
    lines.insert(1600, note_line("restarted", "a note among the lines").rstrip(b"\n"))
    return b"\n".join(lines) + b"\nno newline at the end"


def read_growing(path: Path, data: bytes, read: str) -> tuple[list[bytes], list[int]]:
    """Every line `read` returns while `data` is appended in uneven writes, and the offset after each call."""
    rng = random.Random(7)
    path.write_bytes(b"")
    lines: list[bytes] = []
    offsets: list[int] = []
    written = 0
    with LineReader(path) as reader:
        while True:
            final = written == len(data)
            got = getattr(reader, read)(final=final)
            if got is None:
                if final:
                    return lines, offsets
                step = rng.choice([1, 7, 4096, CHUNK_BYTES // 2, CHUNK_BYTES * 3])
                with path.open("ab") as file:
                    file.write(data[written : written + step])
                written = min(written + step, len(data))
                continue
            lines += got if read == "read_lines" else [line.removesuffix(b"\n") for _end, line in got]
            offsets.append(reader.offset)


def test_lines_at_once_are_the_lines_one_by_one(tmp_path: Path) -> None:
    data = awkward_output()
    by_one, _ = read_growing(tmp_path / "one.log", data, "read_chunk")
    at_once, _ = read_growing(tmp_path / "once.log", data, "read_lines")
    assert at_once == by_one
    expected = data.split(b"\n")
    overlong = next(index for index, line in enumerate(expected) if len(line) > MAX_LINE_BYTES)
    # Only the head of the overlong line is read; every other line whole, the last without a newline.
    assert at_once[overlong] == expected[overlong][:4096]
    assert at_once[:overlong] + at_once[overlong + 1 :] == expected[:overlong] + expected[overlong + 1 :]


def test_the_offset_after_each_read_is_where_the_next_line_starts(tmp_path: Path) -> None:
    data = b"".join(b"line %d\n" % number for number in range(50_000)) + b"partial"
    path = tmp_path / "out.log"
    path.write_bytes(data)
    with LineReader(path) as reader:
        while reader.read_lines() is not None:
            assert data[: reader.offset].endswith(b"\n")
        assert reader.offset == len(data) - len(b"partial")
        assert reader.read_lines(final=True) == [b"partial"] and reader.offset == len(data)
    # A restart resumes at an offset: nothing is read twice, nothing skipped.
    middle = data.index(b"line 25000\n")
    with LineReader(path, middle) as reader:
        assert reader.read_lines()[:2] == [b"line 25000", b"line 25001"]


def command_mission(tmp_path: Path, tail_lines: int) -> Mission:
    row = MissionRow(
        id="0123456789abcdef",
        name="printer",
        parent_id=None,
        root_id="0123456789abcdef",
        depth=0,
        provider="command",
        spec=MissionSpec(task=CommandTask(argv=["printer"])),
        cwd=str(tmp_path),
        status=Status.RUNNING,
        output_path=str(tmp_path / "output.log"),
        stderr_path=str(tmp_path / "stderr.log"),
        created_at=0.0,
    )
    return Mission(row, CommandProvider(), deque(maxlen=tail_lines))


class LineByLine(CommandProvider):
    """The same provider, but not known to print plain text only: every line is parsed on its own."""

    plain_text = False


@pytest.mark.parametrize("tail_lines", [1, 200])
async def test_plain_text_read_at_once_leaves_the_mission_as_line_by_line_does(tmp_path: Path, tail_lines: int) -> None:
    path = tmp_path / "output.log"
    path.write_bytes(awkward_output())
    fast, slow = command_mission(tmp_path, tail_lines), command_mission(tmp_path, tail_lines)
    slow.provider = LineByLine()
    for mission in (fast, slow):
        with LineReader(path) as reader:
            while ingest(mission, reader, final=True) is not None:
                pass
    assert list(fast.tail) == list(slow.tail) and fast.tail[-1] == "no newline at the end"
    assert fast.activity.output_lines == slow.activity.output_lines == len(awkward_output().split(b"\n"))
    assert fast.activity.last_text == slow.activity.last_text == "no newline at the end"
