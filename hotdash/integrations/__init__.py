"""Outbound HTTP to Fly.io and GitHub. Returns dataclasses; knows no models."""

from .fly import FlyClient, fly_client
from .github import GitHubClient, github_client, github_credentials, parse_webhook
from .github_app import github_app
from .http import APIError, PermanentAPIError, RetryableAPIError, use_transport

__all__ = [
    "APIError",
    "FlyClient",
    "GitHubClient",
    "PermanentAPIError",
    "RetryableAPIError",
    "fly_client",
    "github_app",
    "github_client",
    "github_credentials",
    "parse_webhook",
    "use_transport",
]
