"""The control verbs of rituals and quests (see overmind_mcp/control/): what the console may ask a server."""

from __future__ import annotations

from overmind_mcp.control.verbs import Verb
from overmind_mcp.models import Spawned
from overmind_mcp.rituals.models import Paused, QuestRequest, Ritual, RitualName, RitualSpec, Unscheduled

SCHEDULE: Verb[RitualSpec, Ritual] = Verb("schedule", RitualSpec, Ritual)
UNSCHEDULE: Verb[RitualName, Unscheduled] = Verb("unschedule", RitualName, Unscheduled)
PAUSE: Verb[Paused, Ritual] = Verb("pause_schedule", Paused, Ritual)
QUEST: Verb[QuestRequest, Spawned] = Verb("quest", QuestRequest, Spawned)
