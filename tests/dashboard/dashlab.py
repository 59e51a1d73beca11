"""Shared dashboard test data: token, the second lab scan, the running-dashboard handle.

A uniquely named module, not ``conftest``: ``from conftest import`` resolves to whichever
conftest.py is first on sys.path, which depends on the order pytest collects directories in.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))

import pacsradar_samples as S

from pacsradar.models import ScanReport, Severity
from pacsradar.store import Store

TOKEN = "test-token-" + "x" * 24
NEW_CHECK = "DICOM-AE-WILDCARD"
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"


def second_scan() -> ScanReport:
    """The lab a day later: anonymous association fixed, a wildcard-AE finding appeared."""
    started = S.T0 + timedelta(days=1)
    return S.report(
        "scan-b",
        [
            S.result(
                "127.0.0.1",
                4242,
                [
                    S.finding(
                        S.DICOM_PHI,
                        "127.0.0.1",
                        4242,
                        severity=Severity.CRITICAL,
                        evidence=S.phi_evidence(125, 350, 52000),
                        product=S.HOSTILE_BANNER,
                        summary=f"C-FIND answered for AE {S.HOSTILE_AE}",
                    ),
                    S.finding(S.TLS, "127.0.0.1", 4242, severity=Severity.MEDIUM, summary=S.HOSTILE_MD),
                ],
                started=started,
            ),
            S.result(
                "127.0.0.1",
                8042,
                [
                    S.finding(
                        S.WEB_PHI,
                        "127.0.0.1",
                        8042,
                        severity=Severity.CRITICAL,
                        protocol="http",
                        evidence=S.phi_evidence(118, 330, 50000),
                    ),
                ],
                protocol="http",
                started=started,
            ),
            S.result(
                "127.0.0.2",
                104,
                [
                    S.finding(
                        S.TLS,
                        "127.0.0.2",
                        104,
                        severity=Severity.LOW,
                        evidence={"studies": 5, "patients": True},
                    ),
                    S.finding(
                        NEW_CHECK,
                        "127.0.0.2",
                        104,
                        severity=Severity.HIGH,
                        evidence={"called_ae": S.HOSTILE_AE},
                        product=S.HOSTILE_FORMULA,
                    ),
                ],
                product=S.HOSTILE_FORMULA,
                started=started,
            ),
        ],
        started=started,
    )


@dataclass
class Dashboard:
    url: str
    store: Store
    db: Path
