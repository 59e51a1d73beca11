"""DoneSet: the finished endpoints of a resumed scan, IPv4 pairs kept as integers."""

from __future__ import annotations

import pickle

from pacsradar.doneset import DoneSet


def test_membership_matches_a_plain_set_of_pairs() -> None:
    # Given IPv4, IPv6 and name pairs
    pairs = {("192.0.2.1", 104), ("192.0.2.1", 11112), ("2001:db8::1", 104), ("pacs.invalid", 4242)}
    done = DoneSet(pairs)
    # Then it holds exactly them: same length, same iteration, same answers
    assert len(done) == 4 and set(done) == pairs
    assert ("192.0.2.1", 104) in done and ("2001:db8::1", 104) in done and ("pacs.invalid", 4242) in done
    assert ("192.0.2.2", 104) not in done and ("192.0.2.1", 105) not in done


def test_shorthand_and_odd_items_are_not_members() -> None:
    # Given a set holding 127.0.0.1:104
    done = DoneSet([("127.0.0.1", 104)])
    # Then shorthand forms of the address (inet_aton would accept them) are other strings
    assert ("127.1", 104) not in done and ("127.0.0.1", 104) in done
    # And things that are not (host, port) pairs are simply absent, never an error
    odd: list[object] = ["127.0.0.1", ("127.0.0.1",), (1, 2)]
    assert not any(item in done for item in odd)


def test_it_pickles_for_dask_workers() -> None:
    # Given a set with both kinds of pair
    done = DoneSet([("192.0.2.9", 104), ("::1", 11112)])
    # When it crosses a process boundary
    back = pickle.loads(pickle.dumps(done))  # noqa: S301 - our own bytes, as Dask sends them
    # Then it is the same set
    assert set(back) == set(done) and ("192.0.2.9", 104) in back
