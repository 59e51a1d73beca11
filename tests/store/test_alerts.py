"""Alerts: what they say, who is muted, and delivery to webhook, SMTP and syslog on 127.0.0.1."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pacsradar_samples as S
import pytest
from receivers import smtp_receiver, syslog_receiver, webhook_receiver

from pacsradar.alerts import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    Alert,
    AlertError,
    EmailSink,
    SyslogSink,
    WebhookSink,
    build_alert,
    dispatch,
    verify,
)
from pacsradar.models import Severity
from pacsradar.store import AcceptedRisk, ChangeKind, FindingChange, ScanDiff

SECRET = b"webhook-shared-secret"
NOW = datetime(2026, 2, 1, tzinfo=UTC)


def sample_diff() -> ScanDiff:
    new = S.finding(
        "DICOM-AE-WILDCARD",
        "127.0.0.2",
        104,
        severity=Severity.HIGH,
        product=S.HOSTILE_BANNER,
        summary=S.HOSTILE_AE + "\r\nBcc: evil@invalid",
    )
    gone = S.finding(S.DICOM_ANON, "127.0.0.1", 4242, severity=Severity.HIGH)
    info = S.finding("DICOM-ECHO", "127.0.0.1", 4242, severity=Severity.INFO)
    return ScanDiff(
        base="scan-a",
        head="scan-b",
        new=(
            FindingChange(kind=ChangeKind.NEW, dedupe_key=new.dedupe_key, after=new),
            FindingChange(kind=ChangeKind.NEW, dedupe_key=info.dedupe_key, after=info),
        ),
        resolved=(FindingChange(kind=ChangeKind.RESOLVED, dedupe_key=gone.dedupe_key, before=gone),),
    )


def sample_alert() -> Alert:
    alert = build_alert(sample_diff(), report=S.lab_report("scan-b"), at=NOW)
    assert alert is not None
    return alert


def test_alert_lists_changes_above_threshold() -> None:
    # Given a diff with a new high, a new info and a resolved high
    # When the alert is built with the default threshold (low)
    alert = sample_alert()
    # Then the info change is muted, the others are listed with the exposure figure
    assert (alert.counts.new, alert.counts.resolved, alert.muted) == (1, 1, 1)
    assert [i.kind for i in alert.items] == [ChangeKind.NEW, ChangeKind.RESOLVED]
    assert alert.exposure.patients == 120
    assert alert.subject == "[pacsradar] 1 new, 1 resolved on 127.0.0.1/30"
    # And the plain-text body holds no CR/LF injected by a peer string
    assert "Bcc:" not in alert.text()
    assert all("\r" not in line for line in alert.text().splitlines())


def test_accepted_risk_mutes_until_it_expires() -> None:
    # Given an accepted risk on the new finding's check and asset
    risk = AcceptedRisk(
        id=1,
        check_id="DICOM-AE-WILDCARD",
        asset="127.0.0.2:104",
        reason="vendor fix scheduled",
        expires_at=NOW + timedelta(days=1),
        created_at=NOW,
    )
    # When the alert is built before and after expiry
    before = build_alert(sample_diff(), accepted=[risk], at=NOW)
    after = build_alert(sample_diff(), accepted=[risk], at=NOW + timedelta(days=2))
    # Then it is muted only until then
    assert before is not None
    assert after is not None
    assert before.counts.new == 0
    assert after.counts.new == 1
    # And a diff with nothing left to say gives no alert at all
    only_muted = ScanDiff(base="a", head="b", new=sample_diff().new[1:])
    assert build_alert(only_muted, at=NOW) is None


def test_webhook_is_signed_and_retried_with_one_delivery_id() -> None:
    # Given a receiver that fails twice with 503, then accepts
    sleeps: list[float] = []
    with webhook_receiver([503, 503]) as hook:
        sink = WebhookSink(hook.url, SECRET, retries=3, backoff=0.5, sleep=sleeps.append)
        # When one alert is sent
        sink.send(sample_alert())
    # Then three tries arrived, with the same delivery id and a valid HMAC of the raw body
    assert len(hook.requests) == 3
    assert len({r.headers[DELIVERY_HEADER] for r in hook.requests}) == 1
    for r in hook.requests:
        assert r.headers[SIGNATURE_HEADER].startswith("sha256=")
        assert verify(SECRET, r.body, r.headers[SIGNATURE_HEADER])
        assert not verify(b"other-secret", r.body, r.headers[SIGNATURE_HEADER])
    assert sleeps == [0.5, 1.0]
    body = json.loads(hook.requests[-1].body)
    assert Alert.model_validate(body) == sample_alert()
    assert SECRET.decode() not in repr(sink)


def test_webhook_gives_up_on_client_errors_and_after_retries() -> None:
    # Given a receiver that answers 400, and one that always answers 500
    with webhook_receiver([400]) as hook:
        with pytest.raises(AlertError, match="HTTP 400"):
            WebhookSink(hook.url, SECRET, sleep=lambda _: None).send(sample_alert())
        assert len(hook.requests) == 1
    with webhook_receiver([500] * 10) as hook:
        with pytest.raises(AlertError, match="after 3 tries"):
            WebhookSink(hook.url, SECRET, retries=2, sleep=lambda _: None).send(sample_alert())
        assert len(hook.requests) == 3


def test_email_reaches_the_smtp_server() -> None:
    # Given an SMTP server on 127.0.0.1 (aiosmtpd)
    with smtp_receiver() as smtp:
        sink = EmailSink(
            smtp.host,
            smtp.port,
            sender="pacsradar@example.test",
            recipients=["soc@example.test", "pacs-admin@example.test"],
        )
        # When an alert is sent
        deliveries = dispatch(sample_alert(), [sink])
    # Then exactly one message arrives for both recipients, with our subject and body
    assert [d.ok for d in deliveries] == [True]
    assert len(smtp.messages) == 1
    sender, rcpts, msg = smtp.messages[0]
    assert sender == "pacsradar@example.test"
    assert rcpts == ["soc@example.test", "pacs-admin@example.test"]
    assert msg["Subject"] == "[pacsradar] 1 new, 1 resolved on 127.0.0.1/30"
    assert msg["Bcc"] is None
    body = msg.get_payload(decode=True)
    assert isinstance(body, bytes)
    assert b"DICOM-AE-WILDCARD" in body


def test_syslog_messages_are_rfc5424_and_one_line() -> None:
    # Given a UDP syslog collector on 127.0.0.1
    with syslog_receiver() as (address, sock):
        # When an alert with two changes is sent
        SyslogSink(address, facility="local0", protocol="udp", hostname="scanner").send(sample_alert())
        lines = [sock.recv(65535).decode() for _ in range(2)]
    # Then each change is one RFC 5424 line with a priority from its severity
    new, resolved = lines
    assert new.startswith("<131>1 ")  # local0 (16) * 8 + err (3): a new high finding
    assert resolved.startswith("<134>1 ")  # informational: something was fixed
    assert " scanner pacsradar " in new
    assert 'check="DICOM-AE-WILDCARD"' in new
    assert all("\n" not in x and "\r" not in x for x in lines)


def test_one_failing_sink_does_not_stop_the_others() -> None:
    with webhook_receiver([404]) as bad, webhook_receiver() as good:
        deliveries = dispatch(sample_alert(), [WebhookSink(bad.url, SECRET), WebhookSink(good.url, SECRET)])
    assert [d.ok for d in deliveries] == [False, True]
    assert len(good.requests) == 1
