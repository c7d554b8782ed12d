"""One rule for every timestamp on a page: the reader's time zone, shown, inside a ``<time>``.

Times are shown in the active time zone: the one the signed-in user chose on /profile/
(``deployments.middleware.TimeZoneMiddleware`` activates it), UTC otherwise.
``{{ value|when }}`` shows the exact time, "2026-05-04 09:12 UTC" or "2026-05-04 11:12 CEST"
(``when:"seconds"`` adds the seconds, ``when:"time"`` and ``when:"time-seconds"`` show the time
of day only, ``when:"date"`` the date only); ``{{ value|ago }}`` shows it relative to now,
"3 hours ago" or "in 20 minutes". Both put the instant, in UTC, in ``datetime`` and the exact
time, to the second and with its zone, in ``title``, so a relative or shortened time can always
be read exactly. An empty value renders as nothing, so ``|default:"never"`` still applies.
Python code that builds HTML itself uses ``time_html``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.timesince import timesince, timeuntil

register = template.Library()

PRECISIONS = {
    "minutes": "%Y-%m-%d %H:%M %Z",
    "seconds": "%Y-%m-%d %H:%M:%S %Z",
    "time": "%H:%M %Z",
    "time-seconds": "%H:%M:%S %Z",
    "date": "%Y-%m-%d",
}
EXACT = PRECISIONS["seconds"]


def time_html(moment: datetime, text: str | None = None, precision: str = "minutes") -> SafeString:
    """``<time>`` for ``moment`` in the active zone, showing ``text`` or the time at ``precision``
    (a naive ``moment`` is taken as UTC)."""
    if precision not in PRECISIONS:
        raise template.TemplateSyntaxError(
            f"unknown time precision {precision!r}; one of {', '.join(PRECISIONS)}"
        )
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=UTC)
    stamp = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    local = timezone.localtime(moment)
    if text is None:
        text = local.strftime(PRECISIONS[precision])
    # Digits, dashes, colons and zone abbreviations only, apart from timesince's words:
    # nothing to escape.
    return mark_safe(f'<time datetime="{stamp}Z" title="{local.strftime(EXACT)}">{text}</time>')


@register.filter
def when(value: datetime | None, precision: str = "minutes") -> str:
    """The exact time in the active zone (to the minute unless told otherwise)."""
    return time_html(value, precision=precision) if value else ""


@register.filter
def ago(value: datetime | None) -> str:
    """How long ago (or how soon) the moment is; the exact time in the title."""
    if not value:
        return ""
    if value > timezone.now():
        return time_html(value, f"in {timeuntil(value)}")
    return time_html(value, f"{timesince(value)} ago")
