"""The store's write path for endpoints that answered: a batch of results, one transaction.

Issue 26: the per-endpoint ORM path (:meth:`~pacsradar.store.ingest.IngestMixin.record_result`)
cost ~14 ms of CPU per live host of a DICOM farm (six findings, twelve attempts: ~30 ORM
objects, a flush and a query per finding). Here a batch costs a handful of queries, whatever its
size: the assets, services, findings and events it touches are read once, every finding's life is
worked out in memory in the order the results came (so the outcome is that of calling
``record_result`` on each in turn: a test compares the two row for row), and every table gets one
``executemany``. No SQLAlchemy object is made per row, and nothing here imports SQLAlchemy: the
same code writes through the standard library's sqlite3 (:mod:`~pacsradar.store.lite`) and
through a SQLAlchemy connection on SQLite or PostgreSQL (:mod:`~pacsradar.store.ingest`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pacsradar.errors import StoreError
from pacsradar.models import Finding, TargetResult
from pacsradar.store.dbapi import Db
from pacsradar.store.lives import LIFE_COLUMNS, OPEN, RESOLVED, Life, new_life, track
from pacsradar.store.plain import _is_clean, _t, _tj, _to, with_holdings

Key = tuple[str, int, str]  # host, port, protocol


def _json(value: Any) -> str:
    return json.dumps(value)  # SQLAlchemy's JSON type: json.dumps with its defaults


def _json_t(value: dict[str, Any]) -> str:
    """``_json(_tj(value))`` for evidence (models.Evidence: str keys, flat values) without
    walking it: only text holding a NUL needs ``_tj`` (ensure_ascii spells it ``\\u0000``)."""
    text = json.dumps(value)
    return text if "\\u0000" not in text else json.dumps(_tj(value))


def _key(result: TargetResult) -> Key:
    ep = result.endpoint
    return ep.host, ep.port, ep.protocol


def segments(results: Sequence[TargetResult]) -> Iterator[Sequence[TargetResult]]:
    """Runs of results with distinct endpoints: an endpoint recorded twice in one batch (a
    replay) is written after its earlier record, as ``record_result`` would."""
    start, keys = 0, set[Key]()
    for i, r in enumerate(results):
        k = _key(r)
        if k in keys:
            yield results[start:i]
            start, keys = i, set[Key]()
        keys.add(k)
    yield results[start:]


def write_results(db: Db, scan_id: str, results: Sequence[TargetResult], *, fresh: bool = False) -> None:
    """Store ``results`` as :meth:`record_result` on each in turn would, inside the caller's
    transaction. ``fresh``: none of these endpoints was recorded in this scan before (no
    earlier row to replace is looked for)."""
    if not results:
        return
    if not db.rows("SELECT 1 FROM scans WHERE id = ?", (scan_id,)):
        raise StoreError("record_result before begin_scan for this scan id")
    for part in segments(results):
        _Batch(db, scan_id, part).write(fresh=fresh)


class _Batch:
    def __init__(self, db: Db, scan_id: str, results: Sequence[TargetResult]) -> None:
        self.db = db
        self.scan_id = scan_id
        self.results = results

    def write(self, *, fresh: bool) -> None:
        if not fresh:
            self._drop_earlier()
        services = self._services()
        result_ids = self._scan_results(services)
        self._attempts(result_ids)
        self._findings(result_ids)

    def _hosts(self, results: Iterable[TargetResult]) -> list[str]:
        return list(dict.fromkeys(r.endpoint.host for r in results))

    def _drop_earlier(self) -> None:
        # Replaying an endpoint (a resume that redid it) replaces it: never duplicates.
        keys = {_key(r) for r in self.results}
        rows = self.db.select_in(
            "SELECT id, host, port, protocol FROM scan_results WHERE scan_id = ? AND host IN ({})",
            (self.scan_id,),
            self._hosts(self.results),
        )
        old = [(rid,) for rid, h, p, pr in rows if (h, p, pr) in keys]
        self.db.many("DELETE FROM scan_results WHERE id = ?", old)

    def _services(self) -> dict[Key, int]:
        """Upsert the assets and services of the reachable results; their service ids."""
        db = self.db
        live = [r for r in self.results if r.reachable]
        if not live:
            return {}
        hosts = self._hosts(live)
        assets: dict[str, list[Any]] = {}  # host -> [id, first, last, first0, last0]
        for aid, host, first, last in db.select_in(
            "SELECT id, host, first_seen, last_seen FROM assets WHERE host IN ({})", (), hosts
        ):
            f, la = db.read_dt(first), db.read_dt(last)
            assets[host] = [aid, f, la, f, la]
        services: dict[Key, list[Any]] = {}  # [id, service, product, first, last, *originals]
        by_asset = {a[0]: h for h, a in assets.items()}
        for sid, aid, port, proto, service, product, first, last in db.select_in(
            "SELECT id, asset_id, port, protocol, service, product, first_seen, last_seen FROM services"
            " WHERE asset_id IN ({})",
            (),
            list(by_asset),
        ):
            state = [sid, service, product, db.read_dt(first), db.read_dt(last)]
            services[(by_asset[aid], port, proto)] = [*state, *state[1:]]
        new_assets: list[str] = []
        new_services: list[Key] = []
        for r in live:
            host, at = r.endpoint.host, r.started_at
            asset = assets.get(host)
            if asset is None:
                assets[host] = [None, at, at, None, None]
                new_assets.append(host)
            else:
                asset[1], asset[2] = min(asset[1], at), max(asset[2], at)
            key = _key(r)
            svc = services.get(key)
            if svc is None:
                services[key] = [None, _to(r.service), _to(r.product), at, at, None, None, None, None]
                new_services.append(key)
                continue
            if at >= svc[4]:
                svc[1] = _to(r.service) or svc[1]
                svc[2] = _to(r.product) or svc[2]
            svc[3], svc[4] = min(svc[3], at), max(svc[4], at)
        db.many(
            "INSERT INTO assets (host, first_seen, last_seen) VALUES (?, ?, ?)",
            [(_t(h), db.dt(assets[h][1]), db.dt(assets[h][2])) for h in new_assets],
        )
        db.many(
            "UPDATE assets SET first_seen = ?, last_seen = ? WHERE id = ?",
            [
                (db.dt(a[1]), db.dt(a[2]), a[0])
                for a in assets.values()
                if a[0] is not None and (a[1], a[2]) != (a[3], a[4])
            ],
        )
        if new_assets:
            for aid, host in db.select_in("SELECT id, host FROM assets WHERE host IN ({})", (), new_assets):
                assets[host][0] = aid
        db.many(
            "INSERT INTO services (asset_id, port, protocol, service, product, first_seen, last_seen)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (assets[k[0]][0], k[1], k[2], s[1], s[2], db.dt(s[3]), db.dt(s[4]))
                for k in new_services
                for s in (services[k],)
            ],
        )
        db.many(
            "UPDATE services SET service = ?, product = ?, first_seen = ?, last_seen = ? WHERE id = ?",
            [
                (s[1], s[2], db.dt(s[3]), db.dt(s[4]), s[0])
                for s in services.values()
                if s[0] is not None and s[1:5] != s[5:9]
            ],
        )
        if new_services:
            wanted = set(new_services)
            ids = {assets[h][0]: h for h in {k[0] for k in new_services}}
            for sid, aid, port, proto in db.select_in(
                "SELECT id, asset_id, port, protocol FROM services WHERE asset_id IN ({})", (), list(ids)
            ):
                key = (ids[aid], port, proto)
                if key in wanted:
                    services[key][0] = sid
        return {k: s[0] for k, s in services.items()}

    def _scan_results(self, services: dict[Key, int]) -> dict[Key, int]:
        db, scan_id = self.db, self.scan_id
        db.many(
            "INSERT INTO scan_results (scan_id, host, port, protocol, service_id, reachable, service,"
            " product, error, started_at, duration_ms, clean) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    scan_id,
                    _t(r.endpoint.host),
                    r.endpoint.port,
                    r.endpoint.protocol,
                    services[_key(r)] if r.reachable else None,
                    db.flag(r.reachable),
                    _to(r.service),
                    _to(r.product),
                    _to(r.error),
                    db.dt(r.started_at),
                    r.duration_ms,
                    db.flag(_is_clean(r)),
                )
                for r in self.results
            ],
        )
        keys = {_key(r) for r in self.results}
        return {
            (h, p, pr): rid
            for rid, h, p, pr in db.select_in(
                "SELECT id, host, port, protocol FROM scan_results WHERE scan_id = ? AND host IN ({})",
                (scan_id,),
                self._hosts(self.results),
            )
            if (h, p, pr) in keys
        }

    def _attempts(self, result_ids: dict[Key, int]) -> None:
        self.db.many(
            'INSERT INTO attempts (result_id, seq, "check", status, reason, duration_ms, details)'
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    rid,
                    i,
                    _t(a.check),
                    a.status.value,
                    _to(a.reason),
                    a.duration_ms,
                    _json_t(a.details),
                )
                for r in self.results
                for rid in (result_ids[_key(r)],)
                for i, a in enumerate(r.attempts)
            ],
        )

    def _load_lives(self, keys: list[str]) -> tuple[dict[str, Life], set[tuple[int, str]]]:
        """The findings this batch can touch: its own dedupe keys, and the open findings of its
        clean endpoints (which it may resolve); and the events this scan already gave them."""
        db = self.db
        lives: dict[str, Life] = {}
        for row in db.select_in(f"SELECT {LIFE_COLUMNS} FROM findings WHERE dedupe_key IN ({{}})", (), keys):  # noqa: S608
            lives[row[1]] = Life(row, db)
        clean = [r for r in self.results if _is_clean(r)]
        clean_keys = {_key(r) for r in clean}
        for row in db.select_in(
            f"SELECT {LIFE_COLUMNS} FROM findings WHERE status = ? AND host IN ({{}})",  # noqa: S608
            (OPEN,),
            self._hosts(clean),
        ):
            if (row[3], row[4], row[5]) in clean_keys and row[1] not in lives:
                lives[row[1]] = Life(row, db)
        events = {
            (fid, kind)
            for fid, kind in db.select_in(
                "SELECT finding_id, kind FROM finding_events WHERE scan_id = ? AND finding_id IN ({})",
                (self.scan_id,),
                [life.id for life in lives.values()],
            )
        }
        return lives, events

    def _findings(self, result_ids: dict[Key, int]) -> None:
        db, scan_id = self.db, self.scan_id
        # dedupe_key is computed on each access (models.Finding): once per finding here
        keyed = [(r, [(f, f.dedupe_key) for f in r.findings]) for r in self.results]
        lives, old_events = self._load_lives(list(dict.fromkeys(k for _, fs in keyed for _, k in fs)))
        # The stored findings by endpoint, oldest first: what a clean endpoint may resolve
        # (those made by this batch are this scan's own, never resolved by it).
        on_endpoint: dict[Key, list[Life]] = {}
        for stored in sorted(lives.values(), key=lambda x: x.id):
            on_endpoint.setdefault((stored.host, stored.port, stored.protocol), []).append(stored)
        new: list[Life] = []
        events: list[tuple[Life, str, str, datetime]] = []
        evented: set[tuple[str, str]] = set()

        def event(life: Life, kind: str, at: datetime) -> None:
            if (life.dedupe_key, kind) in evented or (life.id, kind) in old_events:
                return
            evented.add((life.dedupe_key, kind))
            events.append((life, kind, life.severity, at))

        occurrences: list[tuple[Any, ...]] = []
        for r, findings in keyed:
            at, rid = r.started_at, result_ids[_key(r)]
            seen: set[str] = set()
            for i, (f, key) in enumerate(findings):
                known = lives.get(key)
                if known is None:
                    life = lives[key] = new_life(f, key, scan_id, at)
                    new.append(life)
                    event(life, "new", at)
                else:
                    life = known
                    kind = track(life, f, scan_id, at)
                    if kind is not None:
                        event(life, kind, at)
                seen.add(key)
                occurrences.append((rid, life, i, f))
            if _is_clean(r):
                for life in on_endpoint.get(_key(r), ()):
                    if (
                        life.status != OPEN
                        or life.last_seen > at
                        or life.dedupe_key in seen
                        or life.last_scan_id == scan_id
                    ):
                        continue
                    life.status, life.resolved_at, life.resolved_scan_id = RESOLVED, at, scan_id
                    life.dirty = True
                    event(life, "resolved", at)
        self._write_lives(lives, new)
        db.many(
            "INSERT INTO finding_events (finding_id, scan_id, kind, severity, at) VALUES (?, ?, ?, ?, ?)",
            [(life.id, scan_id, kind, severity, db.dt(at)) for life, kind, severity, at in events],
        )
        refs: dict[tuple[tuple[str, str | None], ...], str] = {}  # a check's: equal on every host

        def references(f: Finding) -> str:
            key = tuple((ref.title, ref.url) for ref in f.references)
            text = refs.get(key)
            if text is None:
                text = refs[key] = _json(_tj([ref.model_dump() for ref in f.references]))
            return text

        db.many(
            "INSERT INTO finding_occurrences (result_id, scan_id, finding_id, dedupe_key, seq, check_id,"
            ' title, severity, host, port, protocol, summary, evidence, remediation, "references", cwe,'
            " product) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    rid,
                    scan_id,
                    life.id,
                    life.dedupe_key,
                    i,
                    _t(f.check_id),
                    _t(f.title),
                    f.severity.value,
                    _t(f.endpoint.host),
                    f.endpoint.port,
                    f.endpoint.protocol,
                    _t(f.summary),
                    _json_t(with_holdings(f)),
                    _t(f.remediation),
                    references(f),
                    _to(f.cwe),
                    _to(f.product),
                )
                for rid, life, i, f in occurrences
            ],
        )

    def _write_lives(self, lives: dict[str, Life], new: list[Life]) -> None:
        db = self.db
        db.many(
            f"INSERT INTO findings ({LIFE_COLUMNS.removeprefix('id, ')})"  # noqa: S608
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(x.dedupe_key, x.check_id, x.host, x.port, x.protocol, *_changing(x, db)) for x in new],
        )
        db.many(
            "UPDATE findings SET title = ?, severity = ?, evidence_hash = ?, status = ?, first_seen = ?,"
            " last_seen = ?, resolved_at = ?, first_scan_id = ?, last_scan_id = ?, resolved_scan_id = ?"
            " WHERE id = ?",
            [(*_changing(x, db), x.id) for x in lives.values() if x.dirty and x.id is not None],
        )
        if new:
            for fid, key in db.select_in(
                "SELECT id, dedupe_key FROM findings WHERE dedupe_key IN ({})",
                (),
                [x.dedupe_key for x in new],
            ):
                lives[key].id = fid


def _changing(x: Life, db: Db) -> tuple[Any, ...]:
    """A finding's columns that a later scan may change, in the order both statements of
    :meth:`_Batch._write_lives` bind them (after the identity on INSERT, before the id on UPDATE)."""
    dt = db.dt
    return (
        x.title,
        x.severity,
        x.evidence_hash,
        x.status,
        dt(x.first_seen),
        dt(x.last_seen),
        dt(x.resolved_at),
        x.first_scan_id,
        x.last_scan_id,
        x.resolved_scan_id,
    )


__all__ = ["Db", "segments", "write_results"]
