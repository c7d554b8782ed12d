"""Error reports (500 emails, the debug page) that never show a secret."""

from __future__ import annotations

import re
from typing import Any

from django.views.debug import SafeExceptionReporterFilter

from hotdash.security import redact


class SecretsExceptionReporterFilter(SafeExceptionReporterFilter):
    """Hides settings, request headers and frame variables whose names look secret, and any
    configured secret value found in a string variable, with DEBUG on or off."""

    hidden_settings = re.compile(
        "API|TOKEN|KEY|SECRET|PASS|SIGNATURE|AUTHORIZATION|COOKIE|NONCE|FLY|GITHUB|WEBHOOK|HMAC",
        flags=re.IGNORECASE,
    )

    def is_active(self, request: Any) -> bool:
        return True

    def get_traceback_frame_variables(self, request: Any, tb_frame: Any) -> list[tuple[str, Any]]:
        return [
            (name, self._cleanse_variable(name, value))
            for name, value in super().get_traceback_frame_variables(request, tb_frame)
        ]

    def _cleanse_variable(self, name: str, value: Any) -> Any:
        value = self.cleanse_setting(name, value)
        return redact(value) if isinstance(value, str) else value
