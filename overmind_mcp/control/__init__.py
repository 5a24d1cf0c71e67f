"""The control mailbox: how the `overmind` command acts through a live server on the same state directory.

The console never starts a supervisor, so verbs that need one (run, send, and every verb a
feature adds) put a request in `control.db`; one live server claims it, runs the verb's
handler against its supervisor and writes the answer back. See mailbox.py for the table,
dispatcher.py for the server's side, client.py for the console's, registry.py to add a verb.
"""
