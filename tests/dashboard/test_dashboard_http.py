"""The dashboard over real HTTP: token everywhere but /static, escaped output, no PHI."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import pacsradar_samples as S
import pytest
from dashlab import NEW_CHECK, TOKEN, Dashboard

from pacsradar.dashboard import create_app, load_or_create_token
from pacsradar.dashboard.auth import COOKIE, ENV_TOKEN
from pacsradar.report.html import report_css

PAGES = ["/", "/assets", "/findings", "/findings?status=all", "/diff", "/scans", "/scans/scan-b/report"]
API = [
    "/api/scans",
    "/api/scans/scan-b",
    "/api/findings?status=all",
    "/api/assets",
    "/api/diff",
    "/api/trend",
    "/openapi.json",
] + [f"/api/scans/scan-b/report?format={f}" for f in ("html", "sarif", "csv", "json", "md", "defectdojo")]
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("path", PAGES + API)
def test_everything_but_static_needs_the_token(dashboard: Dashboard, path: str) -> None:
    # Given the running dashboard
    with httpx.Client(base_url=dashboard.url) as client:
        # When a route is requested without, or with a wrong, token
        bare = client.get(path)
        wrong = client.get(path, headers={"Authorization": "Bearer nope-nope-nope-nope"})
        cookie = client.get(path, headers={"Cookie": f"{COOKIE}={TOKEN}"})
        # Then it is denied, and the page says so without any data
        for response in (bare, wrong, cookie):
            assert response.status_code == 401
            assert "scan-a" not in response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        # And with the token it is served
        assert client.get(path, headers=AUTH).status_code == 200


def test_static_assets_are_public(dashboard: Dashboard) -> None:
    # Given no token, When the stylesheets are fetched, Then both are served as CSS
    with httpx.Client(base_url=dashboard.url) as client:
        response = client.get("/static/style.css")
        shared = client.get("/static/report.css")
    assert response.status_code == 200
    assert "text/css" in response.headers["content-type"]
    # And the shared sheet is the HTML report's own (one copy, not two)
    assert shared.status_code == 200
    assert "text/css" in shared.headers["content-type"]
    assert shared.text == report_css()


def test_token_in_url_becomes_a_session_cookie(dashboard: Dashboard) -> None:
    # Given the login URL printed by `pacsradar serve`
    with httpx.Client(base_url=dashboard.url) as client:
        # When it is opened
        first = client.get(f"/findings?status=all&token={TOKEN}")
        # Then the token leaves the URL and an HttpOnly, SameSite=Strict cookie replaces it
        assert first.status_code == 303
        assert first.headers["location"] == "/findings?status=all"
        set_cookie = first.headers["set-cookie"]
        assert "HttpOnly" in set_cookie
        assert "samesite=strict" in set_cookie.lower()
        assert TOKEN not in set_cookie
        # And the cookie opens the pages
        assert client.get("/findings?status=all").status_code == 200
        # While a wrong token in the URL is denied
        assert client.get("/?token=wrong-token-wrong-token").status_code == 401


def test_pages_carry_a_no_script_csp(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url, headers=AUTH) as client:
        page = client.get("/")
        report = client.get("/scans/scan-b/report")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"
    assert "default-src 'none'" in report.headers["content-security-policy"]


def test_hostile_strings_and_canary_never_appear_raw(dashboard: Dashboard) -> None:
    # Given a store whose findings carry hostile markup and the canary's keyed hash
    with httpx.Client(base_url=dashboard.url, headers=AUTH) as client:
        # When every page and API route is fetched
        bodies = {p: client.get(p).content for p in PAGES + API}
    # Then no body holds raw markup from a peer, nor any canary bytes
    for path, body in bodies.items():
        for marker in S.MARKUP_MARKERS:
            if path.endswith("format=csv"):
                continue  # CSV is data: formula-neutralised, checked in tests/report
            assert marker.encode() not in body, path
        for form in (S.CANARY_NAME, S.CANARY_ID, "ZZCANARY", "QUILLON"):
            assert form.encode() not in body
            assert form.lower().encode() not in body
    assert b"&lt;script&gt;" in bodies["/findings?status=all"]


def test_json_api_returns_the_models(dashboard: Dashboard) -> None:
    with httpx.Client(base_url=dashboard.url, headers=AUTH) as client:
        scans = client.get("/api/scans").json()
        diff = client.get("/api/diff").json()
        findings = client.get("/api/findings", params={"severity": "critical"}).json()
        report = client.get("/api/scans/scan-b").json()
        spec = client.get("/openapi.json").json()
        bad = client.get("/api/findings", params={"severity": "apocalyptic"})
    assert [s["scan_id"] for s in scans] == ["scan-b", "scan-a"]
    assert (diff["base"], diff["head"]) == ("scan-a", "scan-b")
    assert [c["after"]["check_id"] for c in diff["new"]] == [NEW_CHECK]
    assert [c["before"]["check_id"] for c in diff["resolved"]] == [S.DICOM_ANON]
    assert [c["after"]["check_id"] for c in diff["changed"]] == [S.DICOM_PHI]
    assert {f["finding"]["severity"] for f in findings} == {"critical"}
    assert report["scan_id"] == "scan-b"
    assert {"/api/scans", "/api/findings", "/api/diff", "/api/assets", "/api/trend"} <= set(spec["paths"])
    assert bad.status_code == 422
    assert json.dumps(report).count("\\u003cscript") == 0  # parsed back: plain data


def test_token_is_generated_once_owner_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no token file and no environment override
    monkeypatch.delenv(ENV_TOKEN, raising=False)
    path = tmp_path / "cfg" / "dashboard-token"
    # When the token is loaded twice
    first, created = load_or_create_token(path)
    second, created_again = load_or_create_token(path)
    # Then it was created once, is long, random and readable by the owner only
    assert created
    assert not created_again
    assert first == second
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_short_tokens_are_refused(tmp_path: Path) -> None:
    from pacsradar.store import Store

    with Store(f"sqlite:///{tmp_path / 'x.db'}") as store, pytest.raises(ValueError, match="at least 16"):
        create_app(store, token="short")


@pytest.mark.parametrize("path", ["//evil.example/x", "/\\evil.example/x", "///evil.example"])
def test_token_redirect_stays_on_the_dashboard(dashboard: Dashboard, path: str) -> None:
    # Given a login link whose path is a network-path reference to another site
    # (sent over a raw socket: an HTTP client would resolve and contact "evil.example")
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(dashboard.url)
    request = f"GET {path}?token={TOKEN} HTTP/1.1\r\nHost: {where.netloc}\r\nConnection: close\r\n\r\n"
    with socket.create_connection((where.hostname or "127.0.0.1", where.port or 80), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    # When the dashboard trades the token for a cookie, Then it redirects to a local path only
    head = answer.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 303")
    headers = dict(line.split(":", 1) for line in head.split("\r\n")[1:])
    location = {k.lower(): v.strip() for k, v in headers.items()}["location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, head
