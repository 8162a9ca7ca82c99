"""Helpers shared by the test suites (no fixtures here: see ``tests/conftest.py``).

``processes``: start and stop service worker subprocesses by their own process id.
``waiting``: poll Redis until workers are live (heartbeats) or a condition holds.
``echo_worker``: a runnable test-only service, ``python -m tests.support.echo_worker``.
``retrieval``: start retrieval workers (data dir, offline model cache) and wait until ready.
"""
