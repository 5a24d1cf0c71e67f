"""Cron expressions in IANA zones: syntax, edge cases and daylight saving time, on given instants (no clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from overmind_mcp.errors import InvalidRequest
from overmind_mcp.rituals.cron import Cron, host_zone, iso, stamp


def at(text: str, tz: str = "UTC") -> float:
    """An instant from local wall-clock text such as 2026-03-29 01:59:59."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).timestamp()


def next_local(expression: str, tz: str, start: str, count: int) -> list[str]:
    cron = Cron(expression, tz)
    return [iso(slot, tz) for slot in islice(cron.slots(at(start, tz)), count)]


@pytest.mark.parametrize(
    ("expression", "start", "expected"),
    [
        ("*/15 9-10 * * mon-fri", "2026-01-02 10:40", ["2026-01-02T10:45:00+00:00", "2026-01-05T09:00:00+00:00"]),
        ("0 0 1,15 * *", "2026-01-01 00:00", ["2026-01-15T00:00:00+00:00", "2026-02-01T00:00:00+00:00"]),
        ("0 12 * jan,jul sun", "2026-01-31 00:00", ["2026-07-05T12:00:00+00:00", "2026-07-12T12:00:00+00:00"]),
        ("@daily", "2026-12-31 23:59", ["2027-01-01T00:00:00+00:00", "2027-01-02T00:00:00+00:00"]),
        ("@hourly", "2026-05-05 05:00", ["2026-05-05T06:00:00+00:00", "2026-05-05T07:00:00+00:00"]),
        ("0 0 L * *", "2026-02-01 00:00", ["2026-02-28T00:00:00+00:00", "2026-03-31T00:00:00+00:00"]),
        ("0 0 29 2 *", "2026-01-01 00:00", ["2028-02-29T00:00:00+00:00", "2032-02-29T00:00:00+00:00"]),
        ("0 9 * * mon#1", "2026-01-01 00:00", ["2026-01-05T09:00:00+00:00", "2026-02-02T09:00:00+00:00"]),
        # A leading sixth field is seconds.
        ("*/20 * * * * *", "2026-01-01 00:00:05", ["2026-01-01T00:00:20+00:00", "2026-01-01T00:00:40+00:00"]),
        ("30 0 9 * * *", "2026-01-01 09:00:30", ["2026-01-02T09:00:30+00:00", "2026-01-03T09:00:30+00:00"]),
    ],
)
def test_cron_syntax(expression: str, start: str, expected: list[str]) -> None:
    assert next_local(expression, "UTC", start, len(expected)) == expected


def test_a_slot_is_strictly_after_the_instant_and_before_is_its_mirror() -> None:
    cron = Cron("*/10 * * * * *", "UTC")
    exactly = at("2026-01-01 00:00:10")
    assert cron.after(exactly) == exactly + 10
    assert cron.before(exactly, 3) == [exactly - 20, exactly - 10, exactly]
    forward = list(islice(cron.slots(at("2025-12-31 23:59:00")), 7))
    assert cron.before(forward[-1], 7) == forward


def test_spring_forward_fires_a_missing_time_once_right_after_the_gap() -> None:
    # Europe/Berlin skips 02:00-03:00 on 2026-03-29.
    assert next_local("30 2 * * *", "Europe/Berlin", "2026-03-28 12:00", 3) == [
        "2026-03-29T03:00:00+02:00",
        "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00",
    ]
    # An hourly ritual fires once per real hour: 01:00 CET is followed by 03:00 CEST, an hour later.
    hourly = Cron("0 * * * *", "Europe/Berlin")
    slots = list(islice(hourly.slots(at("2026-03-29 00:30", "Europe/Berlin")), 3))
    assert [iso(slot, "Europe/Berlin") for slot in slots] == [
        "2026-03-29T01:00:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T04:00:00+02:00",
    ]
    assert slots[1] - slots[0] == 3600


def test_fall_back_fires_a_repeated_time_once_unless_the_hour_is_a_wildcard() -> None:
    # Europe/Berlin repeats 02:00-03:00 on 2026-10-25: CEST (+02:00), then CET (+01:00).
    assert next_local("30 2 * * *", "Europe/Berlin", "2026-10-24 12:00", 2) == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]
    assert next_local("*/30 * * * *", "Europe/Berlin", "2026-10-25 01:45", 5) == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:00:00+01:00",
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T03:00:00+01:00",
    ]
    # The same rules backwards: before() never lists the repeat of a daily time.
    daily = Cron("30 2 * * *", "Europe/Berlin")
    assert [iso(slot, "Europe/Berlin") for slot in daily.before(at("2026-10-26 12:00", "Europe/Berlin"), 3)] == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
    ]


def test_new_york_and_a_southern_zone() -> None:
    # America/New_York springs forward at 02:00 on 2026-03-08; Australia/Sydney falls back at 03:00 on 2026-04-05.
    assert next_local("15 2 * * *", "America/New_York", "2026-03-07 12:00", 2) == [
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:15:00-04:00",
    ]
    assert next_local("30 2 * * *", "Australia/Sydney", "2026-04-04 12:00", 2) == [
        "2026-04-05T02:30:00+11:00",
        "2026-04-06T02:30:00+10:00",
    ]


@pytest.mark.parametrize(
    ("expression", "tz", "message"),
    [
        ("61 * * * *", "UTC", "out of range"),
        ("* * *", "UTC", "has 3 fields"),
        ("* * * * * * *", "UTC", "has 7 fields"),
        ("0 0 30 2 *", "UTC", "never fires"),
        ("H * * * *", "UTC", "not valid"),
        ("0 9 * * *", "Mars/Olympus_Mons", "not an IANA time zone"),
        ("0 9 * * *", "../../etc/passwd", "not an IANA time zone"),
    ],
)
def test_bad_input_says_what_to_fix(expression: str, tz: str, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        Cron(expression, tz)


def test_names_and_zones() -> None:
    assert stamp(int(at("2026-03-15 09:00:00"))) == "20260315T090000Z"
    ZoneInfo(host_zone())  # always a zone the scheduler can use
    assert Cron("  0   9 * *  mon ", "UTC").expression == "0 9 * * mon"
    assert datetime.fromtimestamp(Cron("@yearly", "UTC").after(at("2026-06-01")) or 0, UTC).year == 2027
