"""Outbound HTTP to Fly.io and GitHub. Returns dataclasses; knows no models."""

from .fly import FlyClient, fly_client
from .github import GitHubClient, github_client, parse_webhook
from .http import APIError, PermanentAPIError, RetryableAPIError, use_transport

__all__ = [
    "APIError",
    "FlyClient",
    "GitHubClient",
    "PermanentAPIError",
    "RetryableAPIError",
    "fly_client",
    "github_client",
    "parse_webhook",
    "use_transport",
]
