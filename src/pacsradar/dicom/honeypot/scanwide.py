"""Cross-service honeypot tells: what the whole scan shows about each DICOM service (issue 22).

The per-service score (:mod:`pacsradar.dicom.checks.honeypot`) sees one endpoint. Some tells
need the others: the web side of the same host, and the DICOM services of other hosts. This
pass runs once over the finished scan's results (``outcome.scan_report``, local and distributed
alike), is pure (no traffic), and reads only what the probes already recorded in the attempt
details: the honeypot check's ``ac_digest`` and ``patient_set_digest`` (a digest of the keyed
PatientID hashes, never a value), the DICOM identity, and the ``web.fingerprint`` facts.

* **archive-shared-with-suspect**: a service serving the same patient set as a service judged a
  honeypot on its own tells. A fake archive's patients exist nowhere else.
* **archive-fleet**: byte-identical A-ASSOCIATE-AC (AE titles blanked) *and* the same non-empty
  patient set on two or more distinct hosts. Identical configurations alone are not a tell (a
  hospital's identical modalities are common, :mod:`pacsradar.report.fleets`); identical
  archives are, but a replicated pair is possible, so this one never marks alone.
* **web-claimed-product-absent**: the DICOM side claims a product whose default web port on the
  same host answers HTTP, but not as that product.
* **web-default-404-fleet** (supporting): every web port of the host answers ``/`` with the same
  404 page and no product.

The weights live in ``data/honeypot_tells.json`` (``"scope": "scan"``) and combine with the
service's own tells by the same noisy-OR, so the score, the ``suspected`` verdict and the mark
on every finding (hence the headline exclusion) reflect them. The pass recomputes from the
service's own tells each time: running it twice (a stored scan read back) changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence

from pacsradar.dicom.honeypot import toolkit
from pacsradar.dicom.honeypot.score import CHECK_ID, MARK, SCORE, SUSPECTED, TellSeen, TellSpec, load_table
from pacsradar.models import EvidenceValue, Finding, TargetResult
from pacsradar.phi import peer_text

HONEYPOT_CHECK = "dicom.honeypot"
WEB_CHECK = "web.fingerprint"
SERVICE_CHECK = "dicom.service"
#: the per-service score, kept when the scan-level tells change ``score``
SERVICE_SCORE = "service_score"
CROSS_TELLS = "cross_tells"

#: Claimed product -> (its default web ports, the web fingerprint products that are it).
#: Orthanc: "HttpPort": 8042 (Orthanc Book, configuration; shared/reference/dicom_default_ports.csv).
WEB_HOMES: dict[str, tuple[tuple[int, ...], frozenset[str]]] = {
    "Orthanc": ((8042,), frozenset({"Orthanc", "Orthanc Explorer 2", "Stone Web Viewer"})),
}

Details = Mapping[str, EvidenceValue]

#: The tells this pass emits (the ids of the ``"scope": "scan"`` rows of honeypot_tells.json).
SCAN_TELLS = (
    "archive-shared-with-suspect",
    "archive-fleet",
    "web-claimed-product-absent",
    "web-default-404-fleet",
)


def _details(result: TargetResult, check: str) -> Details | None:
    return next((a.details for a in result.attempts if a.check == check), None)


def _lines(value: EvidenceValue) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _tell_id(line: str) -> str:
    return line.split(" (+", 1)[0]


def _own_score(d: Details) -> int:
    raw = d.get(SERVICE_SCORE, d.get("score", 0))
    return int(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else 0


def _claimed_product(result: TargetResult) -> str | None:
    service = _details(result, SERVICE_CHECK) or {}
    uid, version = service.get("implementation_class_uid"), service.get("implementation_version_name")
    copied = toolkit.copied_product_name(
        uid if isinstance(uid, str) else None, version if isinstance(version, str) else None
    )
    if copied is not None:
        return copied
    if isinstance(version, str) and (named := toolkit.version_names_product(version)):
        return named[0]
    return result.product


def _web_tells(dicom: TargetResult, web: Sequence[TargetResult]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    facts = [(w.endpoint.port, d) for w in web if (d := _details(w, WEB_CHECK)) is not None]
    label = _claimed_product(dicom) or ""
    # a product label may carry its version ("Orthanc 1.10.1")
    product = next((k for k in WEB_HOMES if label == k or label.startswith(k + " ")), None)
    home = WEB_HOMES.get(product or "")
    if home is not None:
        ports, names = home
        for port, d in facts:
            seen = d.get("product")
            if port in ports and seen not in names:
                what = (
                    f"as {peer_text(seen, 80)}" if isinstance(seen, str) and seen else "with no known product"
                )
                out.append(
                    ("web-claimed-product-absent", f"claims {product}; its port {port} answers {what}")
                )
                break
    digests = {d.get("root_digest") for _, d in facts}
    if (
        len(facts) >= 2
        and len(digests) == 1
        and None not in digests
        and all(
            d.get("root_status") == 404 and not d.get("product") and not d.get("login_form") for _, d in facts
        )
    ):
        ports_text = ", ".join(str(p) for p, _ in sorted(facts, key=lambda f: f[0])[:6])
        out.append(("web-default-404-fleet", f"web ports {ports_text} answer / with one identical 404 page"))
    return out


def _archive_tells(
    result: TargetResult, d: Details, by_set: Mapping[str, list[TargetResult]], threshold: int
) -> list[tuple[str, str]]:
    pset = d.get("patient_set_digest")
    if not isinstance(pset, str) or not pset:
        return []
    out: list[tuple[str, str]] = []
    group = [o for o in by_set[pset] if o is not result]
    suspects = [o for o in group if _own_score(_details(o, HONEYPOT_CHECK) or {}) >= threshold]
    if suspects:
        out.append(
            (
                "archive-shared-with-suspect",
                f"the same patient set (keyed digest) as {len(suspects)} service(s) suspected "
                "on their own tells",
            )
        )
    ac = d.get("ac_digest")
    if isinstance(ac, str) and ac:
        twins = [o for o in group if (_details(o, HONEYPOT_CHECK) or {}).get("ac_digest") == ac]
        hosts = {o.endpoint.host for o in twins} | {result.endpoint.host}
        if len(hosts) >= 2:
            out.append(
                (
                    "archive-fleet",
                    f"byte-identical A-ASSOCIATE-AC and the same patient set on {len(hosts)} hosts",
                )
            )
    return out


def _rescored(
    result: TargetResult,
    d: Details,
    cross: list[tuple[str, str]],
    specs: Mapping[str, TellSpec],
    threshold: int,
) -> tuple[dict[str, EvidenceValue], bool]:
    own = _lines(d.get("tells")) + _lines(d.get("uncounted_tells"))
    seen = [
        TellSeen(_tell_id(line), specs[_tell_id(line)].weight, line)
        for line in own
        if _tell_id(line) in specs
    ]
    extra = [TellSeen(i, specs[i].weight, ev) for i, ev in cross if i in specs]
    everything = seen + extra
    counted = not all(specs[t.id].supporting for t in everything)
    remaining = 1.0
    for t in everything if counted else ():
        remaining *= 1.0 - t.weight / 100.0
    total = round(100 * (1.0 - remaining))
    new: dict[str, EvidenceValue] = dict(d)
    new[SERVICE_SCORE] = _own_score(d)
    new["score"] = total
    new[SUSPECTED] = total >= threshold
    new[CROSS_TELLS] = [t.line for t in extra]
    if counted:
        new["tells"] = own
        new.pop("uncounted_tells", None)
    return new, bool(everything) and counted


def _summary(details: Details) -> str:
    verdict = "looks like a honeypot" if details.get(SUSPECTED) is True else "shows honeypot tells"
    own, cross = len(_lines(details.get("tells"))), len(_lines(details.get(CROSS_TELLS)))
    where = f", {cross} seen across the scan" if cross else ""
    return f"Service {verdict}: score {details.get('score')}/100 from {own + cross} tell(s){where}"


def _apply(result: TargetResult, details: dict[str, EvidenceValue], scored: bool, mark: bool) -> TargetResult:
    from pacsradar.dicom.checks.honeypot import HONEYPOT_SUSPECT  # the spec lives with its check

    attempts = tuple(
        a.model_copy(update={"details": details}) if a.check == HONEYPOT_CHECK else a for a in result.attempts
    )
    findings: list[Finding] = []
    found = False
    for f in result.findings:
        if f.check_id == CHECK_ID:
            found = True
            f = f.model_copy(update={"evidence": details, "summary": _summary(details)})
        findings.append(f)
    if not found and scored:
        endpoint = result.endpoint
        findings.append(
            HONEYPOT_SUSPECT.finding(
                endpoint, summary=_summary(details), evidence=details, product=result.product
            )
        )
    if mark and details.get(SUSPECTED) is True:
        tag: dict[str, EvidenceValue] = {MARK: True, SCORE: details.get("score")}
        findings = [f.model_copy(update={"evidence": {**f.evidence, **tag}}) for f in findings]
    return result.model_copy(update={"attempts": attempts, "findings": tuple(findings)})


def cross_service(
    results: Iterable[TargetResult], *, threshold: int, count_honeypots: bool = False
) -> list[TargetResult]:
    """The results, each DICOM service re-scored with the scan-level tells (module docstring)."""
    items = list(results)
    specs = {s.id: s for s in load_table().tells}
    by_set: dict[str, list[TargetResult]] = defaultdict(list)
    web_by_host: dict[str, list[TargetResult]] = defaultdict(list)
    for r in items:
        if not r.reachable:
            continue
        d = _details(r, HONEYPOT_CHECK)
        if d is not None:
            pset = d.get("patient_set_digest")
            if isinstance(pset, str) and pset:
                by_set[pset].append(r)
        elif _details(r, WEB_CHECK) is not None:
            web_by_host[r.endpoint.host].append(r)
    out: list[TargetResult] = []
    for r in items:
        d = _details(r, HONEYPOT_CHECK) if r.reachable else None
        if d is None:
            out.append(r)
            continue
        cross = _archive_tells(r, d, by_set, threshold) + _web_tells(r, web_by_host.get(r.endpoint.host, []))
        if not cross and CROSS_TELLS not in d:
            out.append(r)
            continue
        details, scored = _rescored(r, d, cross, specs, threshold)
        out.append(_apply(r, details, scored, mark=not count_honeypots))
    return out


__all__ = ["CROSS_TELLS", "SCAN_TELLS", "SERVICE_SCORE", "WEB_HOMES", "cross_service"]
