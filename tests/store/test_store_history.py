"""Finding history and diff: new, resolved, changed, regressed; "could not test" is not "fixed"."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pacsradar_samples as S

from pacsradar.models import (
    Attempt,
    AttemptStatus,
    Endpoint,
    Finding,
    ScanReport,
    Severity,
    TargetResult,
)
from pacsradar.store import ChangeKind, FindingStatus, Store

DAY = timedelta(days=1)


def _scan(scan_id: str, day: int, results: list) -> ScanReport:  # type: ignore[type-arg]
    started = S.T0 + day * DAY
    return S.report(scan_id, [r.model_copy(update={"started_at": started}) for r in results], started=started)


def _pacs(*checks: tuple[str, Severity, dict[str, object]], errored: bool = False):  # type: ignore[no-untyped-def]
    return S.result(
        "127.0.0.1",
        4242,
        [S.finding(c, "127.0.0.1", 4242, severity=sev, evidence=ev) for c, sev, ev in checks],
        errored=errored,
    )


PHI = (S.DICOM_PHI, Severity.CRITICAL, S.phi_evidence(10, 20, 30))
ANON = (S.DICOM_ANON, Severity.HIGH, {})
TLS = (S.TLS, Severity.MEDIUM, {})


def test_default_diff_compares_last_two_scans_of_the_same_scope(store: Store) -> None:
    # Given two scans of one scope, and a newer scan of another scope
    store.save_report(_scan("a", 0, [_pacs(PHI, ANON)]))
    store.save_report(_scan("b", 1, [_pacs(PHI, TLS)]))
    other = _scan("other", 2, [_pacs(TLS)]).model_copy(update={"scope": ("198.51.100.9",)})
    store.save_report(other)
    # When diffing head "b" with no base
    diff = store.diff("b")
    # Then it compares against "a": TLS is new, ANON resolved, PHI unchanged
    assert (diff.base, diff.head) == ("a", "b")
    assert [c.finding.check_id for c in diff.new] == [S.TLS]
    assert [c.finding.check_id for c in diff.resolved] == [S.DICOM_ANON]
    assert diff.unchanged == 1
    # And with no argument at all, the newest scan is diffed against its own scope's previous
    assert store.diff().base is None
    assert store.diff().head == "other"


def test_changed_severity_or_evidence_is_reported(store: Store) -> None:
    # Given a finding whose severity and then evidence change
    store.save_report(_scan("a", 0, [_pacs(PHI)]))
    store.save_report(_scan("b", 1, [_pacs((S.DICOM_PHI, Severity.HIGH, PHI[2]))]))
    store.save_report(_scan("c", 2, [_pacs((S.DICOM_PHI, Severity.HIGH, S.phi_evidence(11, 20, 30)))]))
    # When diffing each pair
    ab, bc = store.diff("a", "b"), store.diff("b", "c")
    # Then both are "changed", with before and after
    assert [c.kind for c in ab.changed] == [ChangeKind.CHANGED]
    assert ab.changed[0].before is not None
    assert ab.changed[0].before.severity is Severity.CRITICAL
    assert bc.changed[0].after is not None
    assert bc.changed[0].after.evidence["patients"] == 11
    history = [e.kind for e in store.finding_history(ab.changed[0].dedupe_key)]
    assert history == ["new", "changed", "changed"]


def test_regressed_when_a_resolved_finding_comes_back(store: Store) -> None:
    # Given a finding seen, then fixed, then back
    store.save_report(_scan("a", 0, [_pacs(PHI, ANON)]))
    store.save_report(_scan("b", 1, [_pacs(PHI)]))
    store.save_report(_scan("c", 2, [_pacs(PHI, ANON)]))
    # When diffing the last two
    diff = store.diff("b", "c")
    # Then it is "regressed", not "new", and its history says so
    assert [c.finding.check_id for c in diff.regressed] == [S.DICOM_ANON]
    assert diff.new == ()
    key = diff.regressed[0].dedupe_key
    assert [e.kind for e in store.finding_history(key)] == ["new", "resolved", "regressed"]
    (state,) = [s for s in store.findings(status=None) if s.dedupe_key == key]
    assert state.status is FindingStatus.OPEN
    assert state.first_seen == S.T0
    assert state.last_seen == S.T0 + 2 * DAY


def test_errored_endpoint_does_not_resolve_its_findings(store: Store) -> None:
    # Given a finding, then a scan where the endpoint answered but a check errored
    store.save_report(_scan("a", 0, [_pacs(PHI, ANON)]))
    store.save_report(_scan("b", 1, [_pacs(PHI, errored=True)]))
    # When diffing
    diff = store.diff("a", "b")
    # Then the missing finding is "not re-tested", never "resolved", and stays open
    assert diff.resolved == ()
    assert [c.finding.check_id for c in diff.not_retested] == [S.DICOM_ANON]
    open_checks = {s.finding.check_id for s in store.findings()}
    assert S.DICOM_ANON in open_checks


def test_endpoint_outside_the_next_scan_is_not_resolved(store: Store) -> None:
    # Given a finding on a host that the next scan did not cover at all
    store.save_report(
        _scan("a", 0, [_pacs(PHI), S.result("127.0.0.2", 104, [S.finding(S.TLS, "127.0.0.2", 104)])])
    )
    store.save_report(_scan("b", 1, [_pacs(PHI)]))
    # When diffing / Then it is not claimed fixed
    diff = store.diff("a", "b")
    assert diff.resolved == ()
    assert len(diff.not_retested) == 1


def test_closed_endpoint_resolves_its_findings(store: Store) -> None:
    # Given a finding on an endpoint that is unreachable in the next scan
    store.save_report(_scan("a", 0, [_pacs(ANON)]))
    observer_report = _scan("b", 1, [])
    store.begin_scan("b", scope=observer_report.scope, started_at=observer_report.started_at)
    store.record_result(
        "b", S.result("127.0.0.1", 4242, [], reachable=False, started=observer_report.started_at)
    )
    store.finish_scan(observer_report)
    # When diffing / Then the service being gone resolves it
    diff = store.diff("a", "b")
    assert [c.finding.check_id for c in diff.resolved] == [S.DICOM_ANON]
    assert store.findings() == []


def test_findings_filters(store: Store) -> None:
    # Given the lab scan
    store.save_report(S.lab_report())
    # When filtering / Then only matching findings come back, worst first
    assert {s.finding.severity for s in store.findings(severity=Severity.CRITICAL)} == {Severity.CRITICAL}
    assert len(store.findings(min_severity=Severity.HIGH)) == 3
    assert {s.finding.endpoint.host for s in store.findings(host="127.0.0.2")} == {"127.0.0.2"}
    assert len(store.findings(check_id=S.TLS)) == 2
    states = store.findings()
    assert states[0].finding.severity is Severity.CRITICAL


def test_accepted_risk_mutes_until_expiry(store: Store) -> None:
    # Given an accepted risk for one check on one asset, and an expired one
    store.save_report(S.lab_report())
    now = datetime.now(UTC)
    risk = store.add_accepted_risk(
        S.TLS, "127.0.0.2", "legacy modality, isolated VLAN", now + timedelta(days=30)
    )
    store.add_accepted_risk(S.DICOM_ANON, "*", "expired", now - timedelta(days=1))
    # When reading findings
    states = {(s.finding.check_id, s.finding.endpoint.host): s for s in store.findings()}
    # Then only the matching, unexpired one is marked
    assert states[(S.TLS, "127.0.0.2")].accepted_risk == risk
    assert states[(S.TLS, "127.0.0.1")].accepted_risk is None
    assert states[(S.DICOM_ANON, "127.0.0.1")].accepted_risk is None
    assert [r.id for r in store.accepted_risks(active_at=now)] == [risk.id]
    # And removing it unmutes
    store.remove_accepted_risk(risk.id)
    assert all(s.accepted_risk is None for s in store.findings())


def test_a_timeout_does_not_resolve_a_finding(tmp_path: Path) -> None:
    # Given a stored finding on an endpoint
    store = Store(f"sqlite:///{tmp_path / 'f.db'}")
    ep = Endpoint(host="192.0.2.7", port=104, protocol="dicom")
    found = Finding(check_id="DICOM-ANY-AE", title="t", severity=Severity.HIGH, endpoint=ep)
    result = TargetResult(endpoint=ep, reachable=True, findings=(found,))
    store.save_report(_scan("a", 0, [result]))

    def open_keys() -> set[str]:
        return {f.dedupe_key for f in store.findings(status=FindingStatus.OPEN)}

    # When the next scan cannot connect in time (filtered, or down for now)
    timed_out = TargetResult(
        endpoint=ep,
        reachable=False,
        error="connect did not complete",
        started_at=S.T0 + DAY,
        attempts=(Attempt(check="dicom.service", status=AttemptStatus.ERROR, reason="timeout"),),
    )
    store.begin_scan("b", scope=("192.0.2.7",))
    store.record_unreachable("b", [timed_out])
    # Then the finding stays open: "not re-tested" is not "fixed"
    assert found.dedupe_key in open_keys()
    # And a refused connection (the service is gone) does resolve it
    refused = TargetResult(endpoint=ep, reachable=False, error="refused", started_at=S.T0 + 2 * DAY)
    store.begin_scan("c", scope=("192.0.2.7",))
    store.record_unreachable("c", [refused])
    assert found.dedupe_key not in open_keys()
