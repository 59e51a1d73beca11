"""Dashboard token: generated on first run, kept owner-only in the user config directory."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

import platformdirs

ENV_TOKEN = "PACSRADAR_DASHBOARD_TOKEN"  # noqa: S105 - the variable name, not a secret
COOKIE = "pacsradar_session"
MIN_TOKEN_LENGTH = 16


def default_token_path() -> Path:
    return Path(platformdirs.user_config_dir("pacsradar", appauthor=False)) / "dashboard-token"


def load_or_create_token(path: Path | None = None) -> tuple[str, bool]:
    """The dashboard token and whether it was just created.

    ``$PACSRADAR_DASHBOARD_TOKEN`` wins; otherwise the token file is read, or created with
    32 random bytes (``secrets``) and mode 0600 on first run.
    """
    env = os.environ.get(ENV_TOKEN, "").strip()
    if env:
        if len(env) < MIN_TOKEN_LENGTH:
            raise ValueError(f"{ENV_TOKEN} must be at least {MIN_TOKEN_LENGTH} characters")
        return env, False
    path = path or default_token_path()
    if path.exists():
        token = path.read_text(encoding="ascii").strip()
        if len(token) >= MIN_TOKEN_LENGTH:
            return token, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(token + "\n")
    os.chmod(path, 0o600)
    return token, True


def session_value(token: str) -> str:
    """What the session cookie holds: derived from the token, so the cookie is not the token."""
    return hmac.new(token.encode(), b"pacsradar-dashboard-session", hashlib.sha256).hexdigest()


def token_matches(token: str, candidate: str | None) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(token.encode(), candidate.encode())


def session_matches(token: str, candidate: str | None) -> bool:
    if not candidate:
        return False
    return hmac.compare_digest(session_value(token).encode(), candidate.encode())


__all__ = [
    "COOKIE",
    "ENV_TOKEN",
    "default_token_path",
    "load_or_create_token",
    "session_matches",
    "session_value",
    "token_matches",
]
