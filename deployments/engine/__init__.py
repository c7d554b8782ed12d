"""The rollout engine's pure parts: what a machine should look like, computed from plain values."""
