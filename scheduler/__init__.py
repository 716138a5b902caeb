"""Scheduled pushes: APScheduler set-up, broadcast definitions, audiences and runs."""
