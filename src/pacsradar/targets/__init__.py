"""Target scope: what the user is authorised to scan, parsed strictly and expanded lazily.

Why it is built this way:

* **Typos must fail loudly.** A slipped digit (``127.0.0.0/8`` for ``/24``, ``127.0.0.300``) can
  point a scanner at someone else's network. Every token is validated and a bad one raises
  :class:`~pacsradar.errors.TargetError` naming that token (bounded to 100 characters, control
  characters removed), and a scope larger than ``max_hosts`` needs an explicit override
  (:class:`~pacsradar.errors.ScopeTooLargeError`, CLI flag ``--allow-large-scope``).
* **Exclusions always win.** Hospitals exclude life-critical modalities and third-party
  networks. Exclusions are subtracted from the inclusion intervals when the scope is built, so
  an excluded address is never produced, and :meth:`Scope.is_excluded` lets the engine re-check
  addresses it learns later (DNS answers for hostname targets, imported endpoints).
* **Nothing is materialised.** Address blocks are kept as merged, sorted ``(first, last)``
  integer intervals per IP family: a /8 costs two integers, overlaps are scanned once, the host
  count is interval arithmetic and membership tests are a :mod:`bisect` away.
* **No DNS here.** Hostnames are validated (RFC 1123 §2.1 label syntax) and kept as names; the
  engine resolves them at scan time and must then call :meth:`Scope.is_excluded` on every
  address it obtained, because an IP exclusion cannot be matched against a name beforehand.

Endpoints imported from other scanners (:func:`load_import`) enter the same :class:`Scope`
through :func:`parse_scope` (``imported=``) or :func:`scope_from_import`: port-less entries join
the host set, ``(host, port)`` entries become *pinned* endpoints scanned on that port only.
"""

from __future__ import annotations

from pacsradar.targets.expand import DEFAULT_MAX_HOSTS, Scope, parse_scope, scope_from_import
from pacsradar.targets.imports import MAX_IMPORT_BYTES, load_import
from pacsradar.targets.parse import MAX_SHOWN, MAX_TARGET_FILE_BYTES, ImportEntry, parse_ports

__all__ = [
    "DEFAULT_MAX_HOSTS",
    "MAX_IMPORT_BYTES",
    "MAX_SHOWN",
    "MAX_TARGET_FILE_BYTES",
    "ImportEntry",
    "Scope",
    "load_import",
    "parse_ports",
    "parse_scope",
    "scope_from_import",
]
