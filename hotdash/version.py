"""The version HotDash reports (User-Agent, /health, the API schema, backups)."""

__version__ = "0.1.0"
