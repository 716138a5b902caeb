"""Scheduled pushes: APScheduler set-up, broadcast definitions, audiences, runs and surveys.

``setup_broadcasts(app, services)`` wires them into the app; ``BroadcastEngine.tick(now)`` is
the firing logic; ``scheduler.cli`` adds ``unionbot broadcasts`` and ``unionbot members``.
"""
