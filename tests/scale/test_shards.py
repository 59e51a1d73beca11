"""Shards of a distributed scan: complete, exactly once, deterministic, spread; the plan pickles.

No cluster here (units): the worker's endpoint walk is ClusterPlan.endpoints, run in-process.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pickle
from collections import Counter
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from pacsradar.config import Limits, ScanOptions
from pacsradar.distributed.plan import ClusterPlan
from pacsradar.engine import _unreachable
from pacsradar.models import Endpoint, UnreachableGroup
from pacsradar.outcome import port_state
from pacsradar.phi import KeyedHasher
from pacsradar.targets import parse_scope


def _options(ports: tuple[int, ...], **limits: float) -> ScanOptions:
    return ScanOptions(
        only=frozenset({"dicom"}),
        dicom_ports=(),
        web_ports=(),
        share_ports=(),
        extra_ports=ports,
        limits=Limits(**limits),  # type: ignore[arg-type]
    )


def _all_endpoints(plan: ClusterPlan) -> list[tuple[str, int]]:
    return [(e.host, e.port) for k in range(plan.sharding.count) for e in plan.endpoints(k)]


blocks = st.lists(
    st.tuples(st.integers(0, 255), st.integers(0, 255), st.sampled_from([32, 30, 28, 26, 24, 23])),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    include=blocks,
    exclude=st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255), st.integers(0, 255)), max_size=6),
    ports=st.lists(st.integers(1, 65535), min_size=1, max_size=3, unique=True),
    pinned=st.lists(st.tuples(st.integers(0, 255), st.integers(1, 65535)), max_size=4),
    names=st.lists(st.sampled_from(["pacs.invalid", "ris.invalid"]), max_size=2, unique=True),
    shard_endpoints=st.integers(1, 300),
    seed=st.integers(0, 10_000),
)
def test_every_endpoint_is_in_exactly_one_shard(
    include: list[tuple[int, int, int]],
    exclude: list[tuple[int, int, int]],
    ports: list[int],
    pinned: list[tuple[int, int]],
    names: list[str],
    shard_endpoints: int,
    seed: int,
) -> None:
    # Given a scope of loopback blocks, exclusions, names and pinned imported endpoints
    specs = [str(ipaddress.ip_network(f"127.{a}.{b}.0/{m}", strict=False)) for a, b, m in include] + names
    excludes = [f"127.{a}.{b}.{c}" for a, b, c in exclude]
    imported = [(f"127.200.{i}.1", port) for i, port in pinned]
    scope = parse_scope(specs, excludes, imported=imported)
    options = _options(tuple(ports))
    # When the plan is cut into shards
    plan = ClusterPlan.build("s", scope, options, seed=seed, shard_endpoints=shard_endpoints)
    got = _all_endpoints(plan)
    # Then the shards hold exactly the endpoints a local scan walks, each once
    assert Counter(got) == Counter(scope.endpoints(options.ports()))
    assert len(got) == plan.total
    # And all ports of one host are in one shard, which shard_of finds without enumerating
    for k in range(plan.sharding.count):
        for e in plan.endpoints(k):
            assert plan.shard_of(e.host) == k


def test_shards_are_deterministic_and_spread_over_the_scope() -> None:
    # Given a /16 on two ports
    scope = parse_scope(["127.9.0.0/16"])
    options = _options((104, 11112))
    # When two clients build the plan
    a = ClusterPlan.build("x", scope, options)
    b = ClusterPlan.build("x", scope, options)
    # Then they cut the same shards
    assert a.sharding == b.sharding
    assert list(a.endpoints(5)) == list(b.endpoints(5))
    # And one shard touches many /24 subnets, a few addresses each (polite, balanced)
    hosts = {e.host for e in a.endpoints(0)}
    subnets = Counter(h.rsplit(".", 1)[0] for h in hosts)
    assert len(hosts) == 1024
    assert len(subnets) == 256
    assert max(subnets.values()) <= 5


def test_plan_pickles_with_its_link_key_and_never_shows_it() -> None:
    # Given a plan with exclusions, a link key and the default limits
    scope = parse_scope(["127.10.0.0/24"], ["127.10.0.7"])
    options = dataclasses.replace(
        _options((104,)), hasher=KeyedHasher.from_passphrase("correct horse battery staple")
    )
    plan = ClusterPlan.build("scan-1", scope, options, shard_endpoints=32)
    # When it travels to a worker (pickle) and back
    copy = pickle.loads(pickle.dumps(plan))  # noqa: S301 - our own bytes, as Dask sends them
    # Then the worker walks the same endpoints, honours the exclusion, hashes alike
    assert _all_endpoints(copy) == _all_endpoints(plan)
    assert copy.scope.is_excluded("127.10.0.7")
    assert ("127.10.0.7", 104) not in _all_endpoints(copy)
    assert copy.options.hasher.digest("DOE^JANE") == options.hasher.digest("DOE^JANE")
    assert copy.version == plan.version == 1
    # And neither the plan's repr nor its options' repr shows the key or passphrase
    assert "horse" not in repr(copy)
    assert "key hidden" in repr(copy.options)


def test_rate_and_concurrency_are_cluster_totals_split_per_worker() -> None:
    # Given a plan with --rate 20000 --concurrency 9000
    options = _options((104,), rate=20000, concurrency=9000)
    plan = ClusterPlan.build("r", parse_scope(["127.11.0.0/24"]), options)
    # When it is shared among 3 worker processes
    share = plan.share(3).options.limits
    # Then no worker exceeds its third
    assert share.rate * 3 == 20000
    assert share.concurrency * 3 >= 9000 > (share.concurrency - 1) * 3
    # And "unlimited" stays unlimited, "automatic" stays automatic (sized from the rate share)
    auto = ClusterPlan.build("r", parse_scope(["127.11.0.0/24"]), _options((104,), rate=0)).share(2)
    assert auto.options.limits.rate == 0
    assert auto.options.limits.concurrency == 0


def test_closed_endpoints_travel_as_columns_and_come_back_as_the_engines_records() -> None:
    # Given the engine's records for a refused and a timed-out endpoint
    at = datetime(2026, 12, 7, tzinfo=UTC)
    silent = "connect did not complete within 3s"  # net.py's message for a dropped SYN
    cases = [
        (_unreachable(Endpoint(host="127.12.0.1", port=104), "connect failed (refused)", 0.0), False),
        (_unreachable(Endpoint(host="127.12.0.2", port=104), silent, 0.0, timed_out=True), True),
    ]
    for record, timed_out in cases:
        # When a worker returns it in a group (error, timed out, columns) and the client expands it
        group = UnreachableGroup(
            error=str(record.error),
            timed_out=timed_out,
            hosts=(record.endpoint.host,),
            ports=(record.endpoint.port,),
            started_at=at,
            worker="w1",
        )
        (back,) = list(pickle.loads(pickle.dumps(group)).results())  # noqa: S301 - our own bytes
        # Then the client stores what a local scan stores (a timeout stays "could not test")
        assert back.endpoint == record.endpoint
        assert back.error == record.error
        assert [(a.check, a.status, a.reason) for a in back.attempts] == [
            (a.check, a.status, a.reason) for a in record.attempts
        ]
        assert back.worker == "w1"
        assert back.started_at == at
        assert group.clean is not timed_out
        assert port_state(back) == port_state(record) == ("filtered" if timed_out else "closed")


def test_a_shards_addresses_are_its_endpoints_as_plain_pairs() -> None:
    # Given a plan over two ports
    plan = ClusterPlan.build("a", parse_scope(["127.13.0.0/26"]), _options((104, 11112)))
    for k in range(plan.sharding.count):
        # When a worker walks a shard as (host, port) pairs, minus what a resume finished
        done = frozenset({("127.13.0.5", 104)})
        pairs = list(plan.addresses(k, done))
        # Then they are exactly the shard's endpoints, in the same order
        assert pairs == [(e.host, e.port) for e in plan.endpoints(k, done)]
        assert ("127.13.0.5", 104) not in pairs
