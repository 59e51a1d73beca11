"""ScanPlan and ScanSession as a library: plain data, exact resume, exclusions everywhere.

No network: scans here go to 127.0.0.0/8 ports nothing listens on, names go to injected
resolvers (HACKING.md rule 4).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsradar.config import Limits, ScanOptions
from pacsradar.errors import ScopeTooLargeError, TargetError, UsageError
from pacsradar.session import PLAN_VERSION, PlanError, ScanPlan, ScanSession, link_key_id, load_imports


def _plan(**kw: object) -> ScanPlan:
    options = ScanOptions(
        only=frozenset({"dicom"}),
        dicom_ports=(),
        web_ports=(),
        share_ports=(),
        extra_ports=(11112, 4242),
        limits=Limits(connect_timeout=0.5, rate=0),
    )
    args: dict[str, object] = {"options": options}
    args.update(kw)
    return ScanPlan.build(**args)  # type: ignore[arg-type]


def test_plan_pickles_and_round_trips_through_json() -> None:
    # Given a plan with targets, exclusions, imports, ports and a link key
    plan = _plan(
        targets=["127.0.4.0/30", "pacs.example"],
        exclusions=["127.0.4.2"],
        imports=[("127.0.5.1", 104), ("127.0.5.2", None)],
        link_key="correct horse",
    )
    plan.scope()  # a cached Scope must not travel with it
    # When it is pickled (to a worker) and stored as JSON
    shipped = pickle.loads(pickle.dumps(plan))  # noqa: S301
    restored = ScanPlan.from_json(plan.to_json())
    assert "_scope" not in shipped.__dict__ and b"targets.Scope" not in pickle.dumps(plan)
    # Then both are the same plan, yielding the same endpoints
    assert shipped == plan
    assert restored == plan
    assert list(shipped.endpoints()) == list(plan.endpoints()) == list(restored.endpoints())
    assert plan.plan_version == PLAN_VERSION


def test_plan_never_holds_the_link_key() -> None:
    # Given a plan made with a link key
    plan = _plan(targets=["127.0.4.1"], link_key="s3cret-passphrase")
    # Then neither its JSON nor its pickle contains the key, only a one-way id
    assert "s3cret" not in plan.to_json()
    assert b"s3cret" not in pickle.dumps(plan)
    assert plan.link_key_id == link_key_id("s3cret-passphrase")
    # And the options need the same key again
    with pytest.raises(PlanError, match="not the key"):
        plan.options("another key")
    first, again = plan.options("s3cret-passphrase"), plan.options("s3cret-passphrase")
    assert first.hasher.digest("x") == again.hasher.digest("x")


def test_exclusions_win_in_endpoints_and_checks() -> None:
    # Given targets overlapping an exclusion, and an import of an excluded host
    plan = _plan(
        targets=["127.0.4.0/29"],
        exclusions=["127.0.4.4-7", "127.0.5.9"],
        imports=[("127.0.5.9", 104)],
    )
    # When the endpoints are expanded
    hosts = {e.host for e in plan.endpoints()}
    # Then no excluded host appears, and is_excluded says so
    assert hosts == {"127.0.4.0", "127.0.4.1", "127.0.4.2", "127.0.4.3"}
    assert plan.is_excluded("127.0.4.5") and plan.is_excluded("::ffff:127.0.5.9")
    assert not plan.is_excluded("127.0.4.1")
    assert plan.endpoint_count() == 8
    assert {e.port for e in plan.endpoints()} == {11112, 4242}


def test_target_files_are_read_into_the_plan(tmp_path: Path) -> None:
    # Given a target list file
    listing = tmp_path / "targets.txt"
    listing.write_text("127.0.4.1  # ward A\n127.0.4.2,127.0.4.3\n", encoding="utf-8")
    plan = _plan(targets=[f"@{listing}"])
    # When the file changes after the plan is made
    listing.write_text("127.0.0.0/8\n", encoding="utf-8")
    # Then the plan still scans what the file said when the scan started
    assert plan.targets == ("127.0.4.1", "127.0.4.2", "127.0.4.3")
    assert plan.endpoint_count() == 6


def test_bad_plans_are_refused() -> None:
    # Given a typo, a too-large scope, an unknown version and damaged JSON
    with pytest.raises(TargetError, match=r"127\.0\.0\.300"):
        _plan(targets=["127.0.0.300"])
    with pytest.raises(ScopeTooLargeError):
        _plan(targets=["127.0.0.0/8"])
    with pytest.raises(UsageError, match="at least one target"):
        _plan(targets=[])
    current = f'"plan_version":{PLAN_VERSION}'
    future = _plan(targets=["127.0.4.1"]).to_json().replace(current, '"plan_version":99')
    with pytest.raises(PlanError, match="version 99"):
        ScanPlan.from_json(future)
    with pytest.raises(PlanError, match="damaged"):
        ScanPlan.from_json("{not json")
    with pytest.raises(PlanError, match="damaged"):
        ScanPlan.from_json('{"plan_version": 1, "targets": "127.0.0.1"}')


def test_unparseable_import_names_file_and_format(tmp_path: Path) -> None:
    # Given a file named .xml that is not XML
    bad = tmp_path / "bad.xml"
    bad.write_text("no-such-host\n", encoding="utf-8")
    # Then importing it is an error naming the file and the format
    with pytest.raises(TargetError, match=r"bad\.xml.*nmap XML"):
        load_imports([bad])
    broken = tmp_path / "scan.json"
    broken.write_text('[{"ip": "127.0.0.1", ', encoding="utf-8")
    with pytest.raises(TargetError, match=r"scan\.json.*JSON"):
        load_imports([broken])


async def test_unresolvable_name_is_a_warning_and_resolved_names_are_rechecked() -> None:
    # Given names: one that resolves, one that does not, one resolving to an excluded address
    table = {"pacs.lab": ["127.0.4.10"], "sneaky.lab": ["127.0.4.66"]}

    async def resolver(name: str) -> list[str]:
        return table.get(name, [])

    plan = _plan(targets=["pacs.lab", "gone.lab", "sneaky.lab"], exclusions=["127.0.4.66"])
    session = ScanSession(plan, resolver=resolver, auditors=[])
    # When the session runs
    report = await session.run_async()
    # Then the unresolved and the excluded names are warned about and not scanned
    assert session.unresolved == ["gone.lab"]
    assert any("gone.lab" in w and "did not resolve" in w for w in session.warnings)
    assert any("sneaky.lab" in w and "excluded" in w for w in session.warnings)
    assert report.stats.endpoints_done == 2  # pacs.lab on two ports, as its address
    assert session.total == 2


async def test_no_target_left_after_resolution_is_a_usage_error() -> None:
    async def resolver(name: str) -> list[str]:
        return []

    session = ScanSession(_plan(targets=["gone.lab"]), resolver=resolver, auditors=[])
    with pytest.raises(UsageError, match=r"no target left.*gone\.lab"):
        await session.run_async()


async def test_rfc6761_invalid_names_never_reach_a_resolver() -> None:
    # Given the default resolver and a name under .invalid (RFC 6761 §6.4)
    from pacsradar.session import system_resolver

    # Then it answers "does not resolve" without asking DNS
    assert await system_resolver("no-such-host.invalid") == []


_OPTIONS: dict[str, tuple[dict[str, object], Callable[[ScanPlan], object], object]] = {
    # option: (how the user gave it, what the restored plan says, expected)
    "exclusions": ({"exclusions": ["127.0.4.2"]}, lambda p: p.exclusions, ("127.0.4.2",)),
    "ports": ({}, lambda p: p.ports(), (11112, 4242)),
    "only": ({}, lambda p: p.families, ("dicom",)),
    "imports": ({"imports": [("127.0.6.1", 104)]}, lambda p: p.imports, (("127.0.6.1", 104),)),
    "limits": ({}, lambda p: (p.limits.connect_timeout, p.limits.rate), (0.5, 0)),
    "link key id": ({"link_key": "k"}, lambda p: p.link_key_id, link_key_id("k")),
    "allow large": ({"allow_large": True}, lambda p: p.allow_large, True),
}


@pytest.mark.parametrize("option", sorted(_OPTIONS))
def test_every_plan_option_survives_the_store(tmp_path: Path, option: str) -> None:
    # Given a scan run with one option set, stored as it runs
    from pacsradar.store import Store

    given, read, expected = _OPTIONS[option]
    plan = _plan(targets=["127.0.4.1"], **given)
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        key = "k" if "link_key" in given else None
        report = ScanSession(plan, store=store, auditors=[], link_key=key).run(handle_sigint=False)
        # When the scan is reopened for --resume
        restored = ScanSession.resume(store, report.scan_id, link_key=key, auditors=[])
    # Then the restored plan is the stored one, with that option as given
    assert restored.plan == plan
    assert read(restored.plan) == expected


def test_resume_needs_the_same_link_key(tmp_path: Path) -> None:
    from pacsradar.store import Store

    plan = _plan(targets=["127.0.4.1"], link_key="right")
    with Store(f"sqlite:///{tmp_path / 's.db'}") as store:
        first = ScanSession(plan, store=store, auditors=[], link_key="right")
        scan_id = first.run(handle_sigint=False).scan_id
        with pytest.raises(PlanError, match="give the same key"):
            ScanSession.resume(store, scan_id)
        with pytest.raises(PlanError, match="not the key"):
            ScanSession.resume(store, scan_id, link_key="wrong")
        assert ScanSession.resume(store, scan_id, link_key="right").plan == plan
