"""Slash commands: `/mappa` (mappa.py). A listener is a module with `register(app, bot)`."""

from . import mappa


def register(app, bot) -> None:
    mappa.register(app, bot)
