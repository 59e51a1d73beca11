"""Form logins on a small aiohttp portal: blank credentials, a proper portal, lockout."""

from __future__ import annotations

from pacsradar.models import Severity
from web.helpers import attempt, finding, ids, web_scan
from web.servers import Portal, run_app


async def test_portal_accepting_a_blank_login_is_reported() -> None:
    # Given a portal whose login form accepts an empty username and password
    portal = Portal(lambda user, password: user == "" and password == "")
    async with run_app(portal.app()) as port:
        # When it is scanned
        result = await web_scan(port)
    # Then WEB-BLANK-CREDENTIALS is reported for the form login
    blank = finding(result, "WEB-BLANK-CREDENTIALS")
    assert blank.severity is Severity.CRITICAL
    assert blank.evidence["mechanism"] == "form"
    assert blank.evidence["blank_password"] is True
    # And the random baseline login was refused first, then the blank one accepted: 2 logins
    assert len(portal.logins) == 2
    assert portal.logins[1] == ("", "")
    # And plain HTTP with a login form is reported too
    assert finding(result, "WEB-PLAINTEXT").severity is Severity.HIGH


async def test_portal_refusing_blank_and_defaults_gives_no_credential_finding() -> None:
    # Given a portal that only accepts a strong password
    portal = Portal(lambda user, password: (user, password) == ("dr", "l0ng-and-random-pw"))
    async with run_app(portal.app()) as port:
        # When it is scanned
        result = await web_scan(port)
    # Then no credential finding is made, and the attempts stay within the per-host budget
    assert not ids(result) & {"WEB-BLANK-CREDENTIALS", "WEB-DEFAULT-CREDENTIALS"}
    details = attempt(result, "web.credentials")
    assert details["accepted"] is False
    assert 1 <= len(portal.logins) <= 4


async def test_portal_rate_limiting_stops_all_further_logins() -> None:
    # Given a portal that answers 429 + Retry-After after the first login
    portal = Portal(lambda user, password: False, lockout_after=1)
    async with run_app(portal.app()) as port:
        # When it is scanned
        result = await web_scan(port)
    # Then the check stops at the first sign of rate limiting
    assert attempt(result, "web.credentials")["lockout"] is True
    assert len(portal.logins) == 2
    assert not ids(result) & {"WEB-BLANK-CREDENTIALS", "WEB-DEFAULT-CREDENTIALS"}


async def test_portal_accepting_anything_is_not_misread_as_blank_credentials() -> None:
    # Given a portal whose form "accepts" any login (so success cannot be told apart)
    portal = Portal(lambda user, password: True)
    async with run_app(portal.app()) as port:
        # When it is scanned
        result = await web_scan(port)
    # Then the heuristic declines to judge instead of inventing a finding
    assert "WEB-BLANK-CREDENTIALS" not in ids(result)
    credentials = next(a for a in result.attempts if a.check == "web.credentials")
    assert credentials.status.value == "skipped"
