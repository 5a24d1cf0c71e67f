"""Rituals and quests: scheduled runs that never fire twice and never skip silently, and one-shot runs.

cron.py evaluates schedules, store.py keeps rituals.db, scheduler.py fires, service.py holds
the operations the MCP tools and the console's requests (handlers.py) call, views.py makes
their answers, targets.py starts a run (a spawn, or a blueprint once one is registered).
"""
