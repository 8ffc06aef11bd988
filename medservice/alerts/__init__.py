"""Waking alert watchers: the in-process feed and the PostgreSQL LISTEN connection."""
