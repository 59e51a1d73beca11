"""--workers and --scheduler are checked before Dask sees them: a usage error, never a hang."""

from __future__ import annotations

import pytest

from pacsradar.distributed.frontend import check_cluster_options
from pacsradar.errors import UsageError


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://[::1]:8786", "tcp://scheduler-0.example:8786"],
)
def test_a_dask_address_is_accepted(address: str) -> None:
    # Given a well-formed scheduler address; When it is checked; Then nothing is raised
    check_cluster_options(None, address)


@pytest.mark.parametrize(
    "address",
    ["", " ", "bogus\x1b[31m", "tcp://127.0.0.1:99999", "tcp://127.0.0.1:0", "tcp://[::1]:8786x", "a" * 400],
)
def test_a_garbled_scheduler_address_is_a_usage_error(address: str) -> None:
    # Given an address Dask could not use (control characters, a port out of range, too long)
    # When it is checked; Then it is one usage error naming the expected form
    with pytest.raises(UsageError, match=r"tcp://127\.0\.0\.1:8786"):
        check_cluster_options(None, address)


def test_workers_and_scheduler_together_or_out_of_range_are_refused() -> None:
    with pytest.raises(UsageError, match="not both"):
        check_cluster_options(2, "tcp://127.0.0.1:8786")
    with pytest.raises(UsageError, match="1 to 1024"):
        check_cluster_options(0, None)
