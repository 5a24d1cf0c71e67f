"""Supervision: missions started, followed, restarted, ended, and recorded."""
