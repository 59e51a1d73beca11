"""Alerts on what changed between scans: signed webhook, SMTP email, syslog; accepted risks mute.

Typical use (the monitor does this after each scan)::

    alert = build_alert(store.diff(), report=report, accepted=store.accepted_risks())
    dispatch(alert, [WebhookSink(url, secret), EmailSink(host, sender=s, recipients=[r])])
"""

from __future__ import annotations

from pacsradar.alerts.model import Alert, AlertCounts, AlertError, AlertItem, build_alert
from pacsradar.alerts.sinks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    AlertSink,
    Delivery,
    EmailSink,
    SyslogSink,
    WebhookSink,
    dispatch,
    sign,
    verify,
)

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "Alert",
    "AlertCounts",
    "AlertError",
    "AlertItem",
    "AlertSink",
    "Delivery",
    "EmailSink",
    "SyslogSink",
    "WebhookSink",
    "build_alert",
    "dispatch",
    "sign",
    "verify",
]
