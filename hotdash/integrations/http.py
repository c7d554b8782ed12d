"""Outbound HTTP shared by the Fly and GitHub clients.

One factory (:func:`build_client`) builds every client: an overall deadline per request
(settings.HTTP_TIMEOUT_SECONDS) on top of httpx's per-phase timeouts, our user agent, provider
auth and headers. :class:`ApiClient` maps failures onto two exception kinds,
retries what is safe to retry and reconciles non-idempotent creates before repeating them.
Tokens never leave the ``Authorization`` header: not in exceptions, not in logs. A client's
token comes from its :class:`Credentials`: a fixed token, or one that expires (a GitHub App's
installation token), renewed once when the server answers 401 and the request sent again.
"""

from __future__ import annotations

import contextlib
import email.utils
import functools
import logging
import math
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar, cast

import httpx
from django.views.decorators.debug import sensitive_variables

from hotdash.integrations import upstream_tally
from hotdash.version import __version__

log = logging.getLogger("hotdash.integrations")

T = TypeVar("T")

# Methods that may be repeated blindly: a repeat converges on the same result.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
# Methods a provider that paces mutations spaces apart (GitHub: "at least one second between").
MUTATING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
# Upper bound of the doubling wait after rate limits that name no time (GitHub secondary limits).
RATE_LIMIT_BACKOFF_MAX = 900.0
# Per-phase limits (httpx: connect, and read/write/pool per operation), capped by the deadline.
READ_TIMEOUT = 10.0
CONNECT_TIMEOUT = 5.0
REDACTED = "[redacted]"


def _rebuild(cls: type[APIError], state: dict[str, Any]) -> APIError:
    error = cls.__new__(cls)
    error.__dict__.update(state)
    Exception.__init__(error, str(error))
    return error


class APIError(Exception):
    """A call to an external API failed. Carries what is needed to debug it, never the token."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str,
        method: str,
        path: str,
        status: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.method = method
        self.path = path
        self.status = status
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        status = self.status if self.status is not None else "no response"
        text = f"{self.provider} {self.method} {self.path} -> {status}: {self.message}"
        if self.request_id:
            text += f" (request id {self.request_id})"
        return text

    def __reduce__(self) -> tuple[Any, ...]:
        # Celery pickles exceptions; the keyword-only constructor needs help.
        return (_rebuild, (type(self), dict(self.__dict__)))


class RetryableAPIError(APIError):
    """Timeouts, connection errors, 408, 429, 5xx and rate limits: trying later may succeed.

    ``retry_after`` (seconds from when the error was raised) is the earliest time the server
    allows another attempt; callers must not retry sooner.
    """

    retryable = True


class PermanentAPIError(APIError):
    """Any other 4xx: repeating the same request will fail the same way."""


class Credentials(Protocol):
    """Where a client's token comes from."""

    def token(self) -> str:
        """The token to send now."""
        ...

    def renew(self, rejected: str) -> bool:
        """The server refused ``rejected`` (401): forget it. True when :meth:`token` will give
        another one worth sending the request again with."""
        ...


@dataclass(frozen=True, repr=False)
class StaticToken:
    """A token that never changes (a personal token, Fly's API token): a 401 is final."""

    value: str

    def token(self) -> str:
        return self.value

    def renew(self, rejected: str) -> bool:
        return False


@dataclass(frozen=True)
class Provider:
    """What differs between the APIs we talk to."""

    name: str
    request_id_header: str
    headers: Mapping[str, str] = field(default_factory=dict)
    follow_redirects: bool = False
    title: str = ""  # for people: "GitHub rate-limited until 14:05 UTC"
    # A rate limit that names no time (no Retry-After, no reset) waits this long, doubling while
    # it repeats (GitHub secondary limits: "wait at least one minute"); None: normal backoff.
    unnamed_rate_limit_wait: float | None = None
    paces_mutations: bool = False  # space POST/PATCH/PUT/DELETE by GITHUB_MUTATION_SPACING_MS

    @sensitive_variables("token")
    def authorization(self, token: str) -> str:
        # Fly macaroons (`fly tokens deploy`) carry their own scheme; everything else is Bearer.
        return token if token.startswith("FlyV1 ") else f"Bearer {token}"


FLY = Provider(name="fly", title="Fly", request_id_header="fly-request-id")
GITHUB = Provider(
    name="github",
    title="GitHub",
    request_id_header="x-github-request-id",
    headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
    # Asset downloads redirect to storage; httpx drops Authorization on cross-origin hops.
    follow_redirects=True,
    unnamed_rate_limit_wait=60.0,
    paces_mutations=True,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter.

    ``attempts`` counts every try including the first. A server-directed wait (Retry-After,
    x-ratelimit-reset, a rate limit naming no time) longer than ``max_server_wait`` is not
    slept through: the error is raised with ``retry_after`` set so a task can reschedule itself
    instead of holding a worker (build_client's default: settings.HTTP_MAX_SERVER_WAIT_SECONDS).
    """

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    max_server_wait: float = 10.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2**attempt)
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class _Throttle:
    """Pacing and rate-limit memory of one client, shared with its copies (the engine's fenced
    copy): when the next mutating request may start, and per method how many rate limits
    naming no time came since a request of that method last succeeded (a successful GET says
    nothing about a limit on POSTs)."""

    def __init__(self, spacing: float) -> None:
        self.spacing = spacing
        self.unnamed_limits: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_start = -math.inf

    @contextlib.contextmanager
    def mutation(self, sleep: Callable[[float], None]) -> Iterator[None]:
        """Start mutations ``spacing`` seconds apart and never sooner than ``spacing`` after the
        previous one ended. Each caller reserves its start under the lock and waits for it
        outside: nobody sleeps holding the lock (its wait is the caller's own)."""
        with self._lock:
            start = max(time.monotonic(), self._next_start)
            self._next_start = start + self.spacing
        wait = start - time.monotonic()
        if wait > 0:
            sleep(wait)
        try:
            yield
        finally:
            with self._lock:
                self._next_start = max(self._next_start, time.monotonic() + self.spacing)


def _minute_after(moment: float) -> str:
    """``moment`` (epoch seconds) rounded up to the minute, as HH:MM (UTC)."""
    return datetime.fromtimestamp(math.ceil(moment / 60) * 60, tz=UTC).strftime("%H:%M")


def phase_timeouts(deadline: float) -> httpx.Timeout:
    """httpx's per-phase timeouts for a client whose requests must finish within ``deadline``."""
    return httpx.Timeout(min(READ_TIMEOUT, deadline), connect=min(CONNECT_TIMEOUT, deadline))


class _DeadlinePassed(Exception):  # noqa: N818 - a signal between the stream and send_once
    pass


class _DeadlineStream(httpx.SyncByteStream):
    """A response body that stops being read once the request's deadline has passed.

    httpx's read timeout applies to each socket read, so a server that drips a byte at a time
    would never be cut off by it; this checks the clock between chunks.
    """

    def __init__(self, inner: httpx.SyncByteStream, expires: float) -> None:
        self.inner = inner
        self.expires = expires

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.inner:
            if time.monotonic() > self.expires:
                raise _DeadlinePassed
            yield chunk

    def close(self) -> None:
        self.inner.close()


# --- test seam -------------------------------------------------------------------------------

_transport_override: httpx.BaseTransport | None = None


class _Borrowed(httpx.BaseTransport):
    """A shared transport used, but not closed, by each client built while it is installed."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self.inner.handle_request(request)


@contextlib.contextmanager
def use_transport(transport: httpx.BaseTransport) -> Iterator[httpx.BaseTransport]:
    """Route every client built by :func:`build_client` inside the block through ``transport``."""
    global _transport_override
    previous = _transport_override
    _transport_override = transport
    try:
        yield transport
    finally:
        _transport_override = previous


def transport_override() -> httpx.BaseTransport | None:
    """The transport :func:`use_transport` installed, if any: part of the key of any cache of
    built clients, so that a cached client never outlives the transport it was built with."""
    return _transport_override


# --- the client ------------------------------------------------------------------------------


def _parse_retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - now)


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if not isinstance(body, dict):
        return str(body)[:300]
    # Fly: {"error", "status", "message"?}; GitHub: {"message", "errors"?, "documentation_url"}.
    message = body.get("message") or body.get("error") or response.reason_phrase
    if isinstance(body.get("status"), str) and body.get("error"):
        message = f"{message} [{body['status']}]"
    errors = body.get("errors")
    if isinstance(errors, list) and errors:
        details = "; ".join(
            str(e.get("message") or e.get("code")) if isinstance(e, dict) else str(e)
            for e in errors
        )
        message = f"{message} ({details})"
    return str(message)


class ApiClient:
    """An httpx client for one provider with error mapping, retries and reconciliation."""

    def __init__(
        self,
        http: httpx.Client,
        *,
        provider: Provider,
        credentials: Credentials,
        retry: RetryPolicy,
        deadline: float,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rng: random.Random,
        mutation_spacing: float = 0.0,
    ) -> None:
        self.http = http
        self.provider = provider
        self.deadline = deadline
        self.retry = retry
        self.sleep = sleep
        self.clock = clock
        self.credentials = credentials
        self._sent_tokens: set[str] = set()
        self._rng = rng
        self._throttle = _Throttle(mutation_spacing)

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<ApiClient {self.provider.name} {self.http.base_url}>"

    def close(self) -> None:
        self.http.close()

    def _redact(self, text: str) -> str:
        for token in self._sent_tokens:
            token = token.removeprefix("FlyV1 ")
            if token:
                text = text.replace(token, REDACTED)
        return text

    def _error(
        self, kind: type[APIError], request: httpx.Request, message: str, **extra: Any
    ) -> APIError:
        return kind(
            self._redact(message),
            provider=self.provider.name,
            method=request.method,
            path=request.url.path,
            **extra,
        )

    def _error_for(self, request: httpx.Request, response: httpx.Response) -> APIError:
        status = response.status_code
        headers = response.headers
        now = self.clock()
        message = _error_message(response)
        retry_after = _parse_retry_after(headers.get("retry-after"), now)
        exhausted = headers.get("x-ratelimit-remaining") == "0"
        if retry_after is None and exhausted and headers.get("x-ratelimit-reset", "").isdigit():
            retry_after = max(0.0, int(headers["x-ratelimit-reset"]) - now)
        # GitHub answers rate limits with 403 or 429: "API rate limit exceeded" (primary) or
        # "You have exceeded a secondary rate limit", with or without headers saying until when.
        rate_limited = status == 429 or (
            status == 403
            and (exhausted or retry_after is not None or "rate limit" in message.lower())
        )
        unnamed_wait = self.provider.unnamed_rate_limit_wait
        if rate_limited and retry_after is None and unnamed_wait is not None:
            strikes = self._throttle.unnamed_limits.get(request.method, 0)
            retry_after = min(RATE_LIMIT_BACKOFF_MAX, unnamed_wait * 2**strikes)
            self._throttle.unnamed_limits[request.method] = strikes + 1
        if rate_limited and retry_after is not None:
            until = _minute_after(now + retry_after)
            message = f"{self.provider.title} rate-limited until {until} UTC ({message})"
        retryable = status in (408, 429) or status >= 500 or rate_limited
        return self._error(
            RetryableAPIError if retryable else PermanentAPIError,
            request,
            message,
            status=status,
            request_id=headers.get(self.provider.request_id_header),
            retry_after=retry_after,
        )

    @sensitive_variables("token")
    def send_once(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        timeout: httpx.Timeout | None = None,
    ) -> httpx.Response:
        """Send one request; return a 2xx response or raise the mapped :class:`APIError`.

        The whole exchange (connect, send, the complete body) must end within ``self.deadline``
        seconds; a request given per-phase timeouts longer than that (a long poll) gets
        connect + read instead. A 401 is answered by renewing the credentials once (when they
        can be renewed) and sending the request again with the new token.
        """
        renewed = False
        while True:
            token = self.credentials.token()
            self._sent_tokens.add(token)
            request = self.http.build_request(
                method,
                url,
                params=params,
                json=json,
                # A caller's own Authorization (OAuth's client credentials) takes precedence.
                headers={"Authorization": self.provider.authorization(token), **(headers or {})},
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
            )
            response = self._exchange(request, method, timeout)
            if response.is_success:
                self._throttle.unnamed_limits.pop(request.method, None)
                return response
            if response.status_code == 401 and not renewed and self.credentials.renew(token):
                log.info(
                    "%s %s %s -> 401; token renewed, sending again",
                    self.provider.name,
                    method,
                    request.url.path,
                )
                renewed = True
                continue
            raise self._error_for(request, response)

    def _exchange(
        self, request: httpx.Request, method: str, timeout: httpx.Timeout | None
    ) -> httpx.Response:
        deadline = self.deadline
        if timeout is not None:
            deadline = max(deadline, (timeout.connect or 0.0) + (timeout.read or 0.0))
        paced = self.provider.paces_mutations and request.method in MUTATING_METHODS
        status = "error"  # until an answer is read whole
        try:
            with self._throttle.mutation(self.sleep) if paced else contextlib.nullcontext():
                started = time.monotonic()
                try:
                    response = self.http.send(
                        request, stream=True, follow_redirects=self.provider.follow_redirects
                    )
                    try:
                        body = cast(httpx.SyncByteStream, response.stream)
                        response.stream = _DeadlineStream(body, started + deadline)
                        response.read()
                        status = str(response.status_code)
                    finally:
                        response.close()
                finally:
                    upstream_tally.observe(
                        provider=self.provider.name,
                        method=request.method,
                        status=status,
                        seconds=time.monotonic() - started,
                    )
        except _DeadlinePassed as exc:
            message = f"timed out (deadline of {deadline:g} s)"
            raise self._error(RetryableAPIError, request, message) from exc
        except httpx.TimeoutException as exc:
            message = f"timed out ({type(exc).__name__})"
            raise self._error(RetryableAPIError, request, message) from exc
        except httpx.TransportError as exc:
            message = f"connection failed ({type(exc).__name__}: {exc})"
            raise self._error(RetryableAPIError, request, message) from exc
        log.debug(
            "%s %s %s -> %s in %.0f ms (request id %s)",
            self.provider.name,
            method,
            request.url.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            response.headers.get(self.provider.request_id_header),
        )
        return response

    def delay_for(self, error: APIError, attempt: int) -> float:
        """How long to wait before retrying: what the server asked for, else backoff."""
        if error.retry_after is not None:
            return error.retry_after
        return self.retry.backoff(attempt, self._rng)

    def sleeps_through(self, error: APIError, delay: float) -> bool:
        """Whether this client waits ``delay`` in-process: a server-named wait longer than
        ``max_server_wait`` is left to the caller (a task countdown) instead."""
        return error.retry_after is None or delay <= self.retry.max_server_wait

    def pause(self, error: APIError, attempt: int) -> None:
        """Wait before retry number ``attempt + 1``, or re-raise when the budget is spent or
        the server asks for a longer wait than this client sleeps through."""
        delay = self.delay_for(error, attempt)
        if attempt + 1 >= self.retry.attempts or not self.sleeps_through(error, delay):
            raise error
        log.warning(
            "%s; retry %d of %d in %.2f s", error, attempt + 1, self.retry.attempts - 1, delay
        )
        self.sleep(delay)

    def request(
        self,
        method: str,
        url: str,
        *,
        idempotent: bool | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send a request, retrying retryable failures only when repeating it is harmless.

        ``idempotent`` defaults to "the method is safe" (GET, HEAD, OPTIONS, PUT, DELETE);
        pass True for a POST that sets a state (start, stop) and False to never retry.
        """
        repeatable = method.upper() in SAFE_METHODS if idempotent is None else idempotent
        attempt = 0
        while True:
            try:
                return self.send_once(method, url, **kwargs)
            except RetryableAPIError as error:
                if not repeatable:
                    raise
                self.pause(error, attempt)
                attempt += 1

    def create(
        self,
        method: str,
        url: str,
        *,
        parse: Callable[[httpx.Response], T],
        find: Callable[[], T | None],
        **kwargs: Any,
    ) -> T:
        """Perform a non-idempotent create at most once per confirmed failure.

        After a retryable failure the earlier attempt may still have taken effect (the response
        was lost, the gateway timed out). ``find`` looks for its result; only when it finds
        nothing is the create sent again.
        """
        attempt = 0
        while True:
            try:
                return parse(self.send_once(method, url, **kwargs))
            except RetryableAPIError as error:
                self.pause(error, attempt)
                attempt += 1
                found = find()
                if found is not None:
                    log.info(
                        "%s %s %s: the earlier attempt took effect; using its result",
                        self.provider.name,
                        method,
                        error.path,
                    )
                    return found

    def get_json(self, url: str, **kwargs: Any) -> Any:
        return self.request("GET", url, **kwargs).json()

    def paginate(
        self, url: str, *, params: Mapping[str, Any] | None = None, item_key: str | None = None
    ) -> Iterator[Any]:
        """Yield every item of a list endpoint, following ``Link: rel="next"`` verbatim."""
        next_url: str | None = url
        next_params = params
        while next_url:
            response = self.request("GET", next_url, params=next_params)
            body = response.json()
            yield from body[item_key] if item_key else body
            next_url = response.links.get("next", {}).get("url")
            next_params = None


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The process's one TLS context (the CA bundle, SSL_CERT_FILE/SSL_CERT_DIR as httpx reads
    them). httpx would otherwise load the bundle again for every client: about 25 ms of CPU
    each, which the GitHub outbox and every preview or compliance call paid."""
    return httpx.create_ssl_context()


@sensitive_variables("token", "headers")
def build_plain_client(*, timeout: float) -> httpx.Client:
    """A bare client for public URLs (no credentials, no retries, redirects not followed):
    the uptime probes' (see :func:`use_transport` for tests)."""
    override = _transport_override
    return httpx.Client(
        headers={"User-Agent": f"hotdash/{__version__} uptime-probe"},
        timeout=httpx.Timeout(timeout),
        verify=tls_context(),
        transport=_Borrowed(override) if override is not None else None,
    )


def build_client(
    provider: Provider,
    *,
    base_url: str,
    token: str | Credentials,
    timeout: httpx.Timeout | None = None,
    deadline: float | None = None,
    retry: RetryPolicy | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    rng: random.Random | None = None,
    mutation_spacing: float | None = None,
) -> ApiClient:
    """The one factory for outbound API clients (see :func:`use_transport` for tests).

    ``deadline`` (seconds, default settings.HTTP_TIMEOUT_SECONDS) bounds each request as a
    whole; ``timeout`` (default :func:`phase_timeouts` of it) bounds each phase. A provider
    that paces mutations spaces them by ``mutation_spacing`` seconds (default
    settings.GITHUB_MUTATION_SPACING_MS; 0 for a caller that paces by scheduling). ``token`` is a
    fixed token or the :class:`Credentials` that give one per request.
    """
    from django.conf import settings

    if deadline is None:
        deadline = float(settings.HTTP_TIMEOUT_SECONDS)
    if retry is None:
        retry = RetryPolicy(max_server_wait=float(settings.HTTP_MAX_SERVER_WAIT_SECONDS))
    if mutation_spacing is None:
        mutation_spacing = settings.GITHUB_MUTATION_SPACING_MS / 1000
    spacing = mutation_spacing if provider.paces_mutations else 0.0
    headers = {"User-Agent": f"hotdash/{__version__}", **provider.headers}
    override = _transport_override
    http = httpx.Client(
        base_url=base_url,
        headers=headers,
        timeout=timeout if timeout is not None else phase_timeouts(deadline),
        verify=tls_context(),
        transport=_Borrowed(override) if override is not None else None,
    )
    return ApiClient(
        http,
        provider=provider,
        credentials=StaticToken(token) if isinstance(token, str) else token,
        retry=retry,
        deadline=deadline,
        sleep=sleep,
        clock=clock,
        rng=rng or random.Random(),
        mutation_spacing=spacing,
    )
