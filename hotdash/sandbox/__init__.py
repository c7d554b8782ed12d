"""A faithful, in-process simulator of the Fly Machines API and the GitHub REST API.

Imports nothing of ours outside this package. See app.py for the URL layout and world.py
for the state and the Python API tests use.
"""

from .app import ConnectionDropped, SandboxApp, make_app
from .world import Clock, World

__all__ = ["Clock", "ConnectionDropped", "SandboxApp", "World", "make_app"]
