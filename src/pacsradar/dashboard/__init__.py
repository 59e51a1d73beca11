"""The pacsradar dashboard: FastAPI, server-rendered pages and a JSON API over the store."""

from __future__ import annotations

from pacsradar.dashboard.app import create_app
from pacsradar.dashboard.auth import default_token_path, load_or_create_token
from pacsradar.dashboard.server import DashboardServer, serve

__all__ = ["DashboardServer", "create_app", "default_token_path", "load_or_create_token", "serve"]
