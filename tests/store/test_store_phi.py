"""PHI safety of the store: the database holds the models' content and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pacsradar_samples as S
from sqlalchemy import select

from pacsradar.store import AcceptedRisk, Store, evidence_hash, scope_key
from pacsradar.store.schema import metadata

CANARY_FORMS = (
    S.CANARY_NAME,
    S.CANARY_ID,
    S.CANARY_NAME.replace("^", " "),
    "ZZCANARY",
    "QUILLON",
)


def canary_encodings() -> list[bytes]:
    out: list[bytes] = []
    for form in CANARY_FORMS:
        for text in (form, form.lower(), form.upper()):
            out += [text.encode("utf-8"), text.encode("utf-16-le")]
    return out


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [str(k), *_strings(v)]]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


def test_every_stored_string_comes_from_the_models(store: Store) -> None:
    # Given a stored lab scan, a second one and an accepted risk
    report = S.lab_report()
    store.save_report(report)
    store.save_report(S.lab_report("scan-b", started=S.T0.replace(day=6)))
    risk: AcceptedRisk = store.add_accepted_risk(S.TLS, "127.0.0.2", "isolated", S.T0.replace(year=2099))
    # When every text value of every table is read back
    allowed = set(_strings(report.model_dump(mode="json")))
    allowed |= {"scan-b", risk.reason, risk.asset, scope_key(report.scope)}
    allowed |= {f.dedupe_key for f in report.findings}
    allowed |= {evidence_hash(f.evidence) for f in report.findings}
    allowed |= {
        "running",
        "finished",
        "interrupted",
        "open",
        "resolved",
        "new",
        "changed",
        "regressed",
        "0001",
    }
    seen: list[tuple[str, str, str]] = []
    with store.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)).mappings():
                for column, value in row.items():
                    seen += [(table.name, column, s) for s in _strings(value)]
    # Then each one is the models' own content or our bookkeeping vocabulary
    stray = [(t, c, s) for t, c, s in seen if s not in allowed]
    assert stray == []
    assert seen  # the walk did read the tables


def test_database_file_holds_no_canary_bytes(tmp_path: Path) -> None:
    # Given a SQLite store holding a scan whose peer handled the canary patient
    db = tmp_path / "pacsradar.db"
    with Store(f"sqlite:///{db}") as store:
        store.save_report(S.lab_report())
        store.save_report(S.lab_report("scan-b", started=S.T0.replace(day=6)))
    # When the database files are read as bytes (including any WAL left behind)
    blobs = [p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("pacsradar.db")]
    # Then no encoding of the canary appears, while its keyed hash does
    for blob in blobs:
        for needle in canary_encodings():
            assert blob.count(needle) == 0
    assert any(S.HASHER.digest(S.CANARY_NAME).encode() in b for b in blobs)


def test_database_file_is_owner_only(tmp_path: Path) -> None:
    # Given a new SQLite store / Then its file is readable by its owner only
    db = tmp_path / "sub" / "pacsradar.db"
    Store(f"sqlite:///{db}").close()
    assert db.stat().st_mode & 0o077 == 0
