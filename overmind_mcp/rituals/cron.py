"""Cron expressions evaluated in an IANA time zone: which instants a ritual is due at.

croniter does the cron syntax (ranges, lists, steps, names, `L`, `#`, `@daily`…); an optional
leading seconds field makes six fields. Instants are whole seconds since the epoch, in UTC, so
a slot is one number whatever the zone says about it. Daylight saving time, as cron does it:
a wall-clock time that does not exist (spring forward) fires once, at the first instant after
the gap; a wall-clock time that happens twice (fall back) fires once, the first time, unless
the hour field is `*` (an hourly or finer ritual fires every real hour, both of them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from overmind_mcp.errors import InvalidRequest

if TYPE_CHECKING:
    from croniter import croniter

_FIELDS = {5: "minute hour day-of-month month day-of-week", 6: "second minute hour day-of-month month day-of-week"}
_HOURS_ALL = 24


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name` (e.g. Europe/Berlin, UTC); raises InvalidRequest."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidRequest(
            f"tz {name!r} is not an IANA time zone: use a name such as UTC, Europe/Berlin or America/New_York"
        ) from None


def host_zone() -> str:
    """The host's IANA time zone: $TZ, else where /etc/localtime points, else /etc/timezone, else UTC."""
    candidates = [os.environ.get("TZ", "").removeprefix(":")]
    localtime = Path("/etc/localtime")
    if localtime.is_symlink():
        target = str(localtime.resolve())
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    with contextlib.suppress(OSError):
        candidates.append(Path("/etc/timezone").read_text().strip())
    for candidate in candidates:
        if candidate:
            try:
                ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            return candidate
    return "UTC"


class Cron:
    """One expression in one zone; `after(t)` is the first slot strictly after the instant t."""

    def __init__(self, expression: str, tz: str) -> None:
        self.expression = " ".join(expression.split())
        self.tz = tz
        self._zone = zone(tz)
        fields = self.expression.split(" ")
        self._seconds = len(fields) == 6 and not self.expression.startswith("@")
        if not self.expression.startswith("@") and len(fields) not in _FIELDS:
            raise InvalidRequest(
                f"cron {expression!r} has {len(fields)} fields: give 5 ({_FIELDS[5]}), 6 with a leading second, "
                "or a macro such as @daily"
            )
        # Imported here, by the first schedule made: a server with none never loads croniter.
        from croniter import CroniterBadCronError, CroniterError

        try:
            probe = self._iterator(datetime(2000, 1, 1, tzinfo=UTC))
        except (CroniterBadCronError, CroniterError, ValueError, KeyError) as exc:
            raise InvalidRequest(f"cron {expression!r} is not valid: {exc}") from None
        hours = probe.expanded[2 if self._seconds else 1]
        # An hour field of `*` keeps both runs of a repeated (fall-back) hour.
        self._every_hour = hours == ["*"] or len(hours) == _HOURS_ALL
        if self.after(0) is None:
            raise InvalidRequest(f"cron {expression!r} never fires (e.g. 30 February)")

    def _iterator(self, start: datetime) -> croniter:
        from croniter import croniter

        return croniter(self.expression, start, second_at_beginning=self._seconds)

    @property
    def has_seconds(self) -> bool:
        return self._seconds

    def after(self, instant: float) -> int | None:
        """The first slot strictly after `instant` (seconds since the epoch); None if there is none."""
        return next(self.slots(instant), None)

    def slots(self, instant: float) -> Iterator[int]:
        """Every slot strictly after `instant`, in order."""
        from croniter import CroniterBadDateError

        iterator = self._iterator(datetime.fromtimestamp(int(instant), tz=UTC).astimezone(self._zone))
        last = int(instant)
        while True:
            try:
                local: datetime = iterator.get_next(datetime)
            except CroniterBadDateError:
                return
            slot = int(local.timestamp())
            if slot <= last:
                continue
            if not self._every_hour and _is_repeat(slot, self._zone):
                continue
            last = slot
            yield slot

    def before(self, instant: float, count: int) -> list[int]:
        """Up to `count` slots at or before `instant`, oldest first."""
        from croniter import CroniterBadDateError

        iterator = self._iterator(datetime.fromtimestamp(int(instant) + 1, tz=UTC).astimezone(self._zone))
        found: list[int] = []
        while len(found) < count:
            try:
                local: datetime = iterator.get_prev(datetime)
            except CroniterBadDateError:
                break
            slot = int(local.timestamp())
            if slot > instant or (found and slot >= found[-1]):
                continue
            if not self._every_hour and _is_repeat(slot, self._zone):
                continue
            found.append(slot)
        return found[::-1]


def _is_repeat(slot: int, tz: ZoneInfo) -> bool:
    """Whether the wall-clock time of `slot` already happened an hour (or so) earlier: a fall-back repeat."""
    local = datetime.fromtimestamp(slot, tz=UTC).astimezone(tz)
    if local.fold == 0:
        return False
    first = local.replace(fold=0)
    return first.utcoffset() != local.utcoffset() and first.astimezone(UTC) < local.astimezone(UTC)


def iso(slot: float, tz: str | None = None) -> str:
    """An instant as ISO 8601, in `tz` (with its offset) or UTC."""
    when = datetime.fromtimestamp(slot, tz=UTC)
    if tz is not None:
        when = when.astimezone(zone(tz))
    return when.isoformat(timespec="seconds")


def stamp(slot: int) -> str:
    """A slot for a mission name: 20260315T090000Z."""
    return datetime.fromtimestamp(slot, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
