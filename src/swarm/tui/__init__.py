"""The Textual dashboard (`swarm tui`); the only package that imports textual."""

from swarm.tui.app import SwarmApp, build_app

__all__ = ["SwarmApp", "build_app"]
