"""Backends turn a spec into assets, runs, endpoints and schedules in one kind of workspace."""
