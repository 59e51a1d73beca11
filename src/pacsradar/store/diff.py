"""What changed between two scans of the same scope."""

from __future__ import annotations

from sqlalchemy import select

from pacsradar.errors import StoreError
from pacsradar.store.closed import dead_groups
from pacsradar.store.plain import evidence_hash
from pacsradar.store.queries import QueriesMixin
from pacsradar.store.schema import (
    OccurrenceRow,
    ScanResultRow,
    ScanRow,
)
from pacsradar.store.views import (
    ChangeKind,
    FindingChange,
    ScanDiff,
)


class DiffMixin(QueriesMixin):
    """The diff of two scans."""

    def diff(self, base: str | None = None, head: str | None = None) -> ScanDiff:
        """What changed between two scans.

        With no argument: the newest scan against the previous scan of the same scope. With one
        (``head``): that scan against the previous one of its scope. With none stored: an error.
        """
        if head is None and base is not None:
            base, head = None, base
        if head is None:
            head = self.latest_scan_id()
            if head is None:
                raise StoreError("the store holds no scan yet")
        if base is None:
            base = self.previous_scan_id(head)
        with self._read() as s:
            head_row = self._scan_row(s, head)
            if base is not None:
                self._scan_row(s, base)
            by_scan = self._findings_by_scan(s, [x for x in (base, head) if x])
            before = {f.dedupe_key: f for f in by_scan.get(base or "", [])} if base else {}
            after = {f.dedupe_key: f for f in by_scan.get(head, [])}
            coverage: dict[tuple[str, int, str], bool] = {}
            # README: a refused connection resolves. A refused port has no protocol of its
            # own ("unknown"), so it covers every protocol that ran on that host and port.
            closed_ports: dict[tuple[str, int], bool] = {}
            for h, p, pr, clean, reachable in s.execute(
                select(
                    ScanResultRow.host,
                    ScanResultRow.port,
                    ScanResultRow.protocol,
                    ScanResultRow.clean,
                    ScanResultRow.reachable,
                ).where(ScanResultRow.scan_id == head)
            ):
                coverage[(h, p, pr)] = clean
                if not reachable:
                    closed_ports[(h, p)] = clean
            for hosts, ports, group in dead_groups(s, head):  # stored as columns (issue 26)
                for h, p in zip(hosts, ports, strict=True):
                    coverage[(h, p, group.protocol)] = group.clean
                    closed_ports[(h, p)] = group.clean
            added = [k for k in after if k not in before]
            earlier: set[str] = set()
            if added:
                earlier = set(
                    s.scalars(
                        select(OccurrenceRow.dedupe_key)
                        .join(ScanRow, ScanRow.id == OccurrenceRow.scan_id)
                        .where(
                            OccurrenceRow.dedupe_key.in_(added),
                            ScanRow.id != head,
                            ScanRow.started_at < head_row.started_at,
                        )
                        .distinct()
                    )
                )
        new: list[FindingChange] = []
        regressed: list[FindingChange] = []
        for k in added:
            kind = ChangeKind.REGRESSED if k in earlier else ChangeKind.NEW
            change = FindingChange(kind=kind, dedupe_key=k, after=after[k])
            (regressed if k in earlier else new).append(change)
        resolved: list[FindingChange] = []
        not_retested: list[FindingChange] = []
        changed: list[FindingChange] = []
        unchanged = 0
        for k, f in before.items():
            if k in after:
                g = after[k]
                if g.severity != f.severity or evidence_hash(g.evidence) != evidence_hash(f.evidence):
                    changed.append(FindingChange(kind=ChangeKind.CHANGED, dedupe_key=k, before=f, after=g))
                else:
                    unchanged += 1
                continue
            ep = f.endpoint
            covered = coverage.get((ep.host, ep.port, ep.protocol))
            if covered is None:
                covered = closed_ports.get((ep.host, ep.port))
            if covered:
                resolved.append(FindingChange(kind=ChangeKind.RESOLVED, dedupe_key=k, before=f))
            else:
                not_retested.append(FindingChange(kind=ChangeKind.NOT_RETESTED, dedupe_key=k, before=f))
        order = _severity_order
        return ScanDiff(
            base=base,
            head=head,
            new=tuple(sorted(new, key=order)),
            resolved=tuple(sorted(resolved, key=order)),
            changed=tuple(sorted(changed, key=order)),
            regressed=tuple(sorted(regressed, key=order)),
            not_retested=tuple(sorted(not_retested, key=order)),
            unchanged=unchanged,
        )


def _severity_order(change: FindingChange) -> tuple[int, str, int, str]:
    f = change.finding
    return (-f.severity.rank, f.endpoint.host, f.endpoint.port, f.check_id)
