"""What every verb shares: exit codes that mean something, and the error that carries one."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0
    # Something needs attention: doctor found a problem, a kill left a mission running, a mission
    # ended while no server could record how.
    PROBLEM = 1
    USAGE = 2  # bad arguments (argparse's own code)
    NOT_FOUND = 3  # no mission has that id or name, or there is no database yet
    TIMEOUT = 124  # `wait --timeout` passed first, as timeout(1) says it
    INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT


class CliError(Exception):
    """A refusal to print as one line (no traceback) and exit with `code`."""

    def __init__(self, message: str, code: Exit = Exit.PROBLEM) -> None:
        super().__init__(message)
        self.code = code


class NoDatabase(CliError):
    """The state directory has no database yet: nothing has ever run there."""

    def __init__(self, message: str) -> None:
        super().__init__(message, Exit.NOT_FOUND)
