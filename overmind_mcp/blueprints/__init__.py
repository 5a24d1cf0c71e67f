"""Blueprints: pipelines of agents as TOML DAGs — parallel, passing results on, durable across a crash.

`spec` is the format, `validate` turns text into a blueprint (or every problem at once),
`plan` orders it in layers, `template` and `when` are what a node may say about earlier
ones, `journal` keeps a run's progress in a database of its own, `executor` runs one through
the supervisor, and `runner` makes a run a mission of its own.
"""
