"""Issue 26: frozen models given the same field names share one fields-set (memory of a dense
scan), and nothing a caller can see changes."""

from __future__ import annotations

from pacsradar.models import Endpoint


def test_instances_share_their_fields_set_and_copies_do_not_leak() -> None:
    # Given two endpoints built with the same field names, and one with another
    a = Endpoint(host="127.0.0.1", port=104)
    b = Endpoint(host="127.0.0.2", port=11112)
    other = Endpoint(host="127.0.0.3", port=104, protocol="dicom")
    # Then the first two share one set, with the names each was given
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.model_fields_set == {"host", "port"} and other.model_fields_set == {"host", "port", "protocol"}
    # When one is copied with an update
    c = a.model_copy(update={"protocol": "dicom"})
    # Then only the copy gained the name: the shared set is untouched
    assert c.model_fields_set == {"host", "port", "protocol"}
    assert a.model_fields_set == b.model_fields_set == {"host", "port"}
    assert a.model_dump(exclude_unset=True) == {"host": "127.0.0.1", "port": 104}
