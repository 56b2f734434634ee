"""Broker URLs: parsed, and never shown with their password.

`mqtt://user:pass@host:port` is accepted for convenience, but a password in a URL ends
up in shell history and process lists, so `SWARM_BROKER_PASSWORD` (or `--password-file`,
which sets it for the process and its workers) supplies it instead. Whatever is shown or
written (summaries, events, errors) goes through `redact`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

__all__ = ["PASSWORD_ENVIRONMENT", "BrokerUrl", "redact"]

PASSWORD_ENVIRONMENT = "SWARM_BROKER_PASSWORD"
_CREDENTIALS = re.compile(r"(//[^/@:\s]*):[^@\s]*@")


def redact(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _CREDENTIALS.sub(r"\1:***@", text)


@dataclass(frozen=True)
class BrokerUrl:
    host: str
    port: int = 1883
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str) -> BrokerUrl:
        """`mqtt://[user[:pass]@]host[:port]`; a bad URL raises ValueError saying why.

        A user without a password in the URL takes it from SWARM_BROKER_PASSWORD.
        """
        shown = redact(text)
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError as exc:
            raise ValueError(f"broker URL {shown!r}: {redact(str(exc))}") from None
        if parts.scheme != "mqtt":
            raise ValueError(
                f"broker URL {shown!r}: use mqtt://host:port (e.g. mqtt://127.0.0.1:1883)"
            )
        if not parts.hostname:
            raise ValueError(f"broker URL {shown!r}: no host (e.g. mqtt://127.0.0.1:1883)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"broker URL {shown!r}: only mqtt://[user:pass@]host[:port]")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        if username is not None and password is None:
            password = os.environ.get(PASSWORD_ENVIRONMENT) or None
        return cls(host=parts.hostname, port=port or 1883, username=username, password=password)

    def __str__(self) -> str:
        return f"mqtt://{self.host}:{self.port}"
