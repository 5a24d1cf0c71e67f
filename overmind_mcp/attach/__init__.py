"""A person takes over a live session (`overmind attach`), and the request path the console uses to ask for it.

Measured with Claude Code 2.1.332 (see `supervision/holds.py`): a second `claude --resume=<session>` runs beside
an idle headless session without complaint, but the headless process never sees what it did. So
the server parks the headless process between turns (ends it), the person resumes the session in
their terminal, and on release the server starts the session again with `--resume`: the same
conversation, with the person's turns in it.

`wire` is the request path (console → the server that owns a mission), `serving` the server's
side of it, `terminal` the person's.
"""
