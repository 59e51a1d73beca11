"""The DICOM header walker and batch reader of the file audit: :mod:`pacsradar.files.core`.

``core`` is compiled with mypyc at install time when a C compiler is there (``setup.py``) and is
plain Python otherwise; both give identical results. Everything imports it through this module,
which

* configures its tag tables: PS3.15 Annex E Table E.1-1 (the packaged CSV, :mod:`annex_e`) and the
  tags whose dictionary VR is SQ (pydicom's data dictionary, PS3.6), which implicit VR needs to
  descend into defined-length sequences (PS3.5 §7.5);
* uses a compiled ``core`` only if it was built from the ``core.py`` next to it. Python prefers an
  extension module to a ``.py`` of the same name, so an extension left from before an edit would
  otherwise shadow the edited source silently. The build records the SHA-256 of the source it
  compiled (:data:`STAMP`, next to the extension); a stale or unstamped extension is ignored with
  a warning and the source runs. Rebuild with ``pip install -e .`` (in a checkout that is not
  the installed one: ``python setup.py build_ext --inplace``);
* says which one runs: :data:`COMPILED` and :data:`IMPLEMENTATION` (the bench prints them).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from pydicom.datadict import dictionary_VR, keyword_dict

from pacsradar.files.annex_e import load as _load_annex_e

_built: ModuleType | None
try:
    from pacsradar.files import core as _built
except ImportError:  # a broken build (half of it compiled, a missing library): run the source
    _built = None

#: Written by the build next to the compiled extension: the SHA-256 (hex) of the core.py compiled.
STAMP = "core.sha256"

_log = logging.getLogger(__name__)


def source_path() -> Path:
    return Path(__file__).with_name("core.py")


def _configure(module: ModuleType) -> ModuleType:
    annex = _load_annex_e()
    sq_tags = [tag for tag in keyword_dict.values() if dictionary_VR(tag) == "SQ"]
    module.configure(annex.keywords, sq_tags, lambda tag: annex.keyword(tag) is not None)
    return module


def load_source() -> ModuleType:
    """``core.py`` run as plain Python (never the extension), configured: the reference a compiled
    build must match, and what runs when there is no up-to-date build."""
    spec = importlib.util.spec_from_file_location("pacsradar.files._core_source", source_path())
    if spec is None or spec.loader is None:
        raise ImportError("pacsradar.files.core source not found")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return _configure(module)


def compiled_is_current() -> bool | None:
    """None without a compiled core; else whether it was built from the core.py beside it (True
    when that source is not installed: nothing to be stale against)."""
    if _built is None or not _built.COMPILED:
        return None
    extension = Path(str(_built.__file__))
    try:
        source = extension.with_name("core.py").read_bytes()
    except OSError:
        return True
    try:
        stamp = extension.with_name(STAMP).read_text("ascii").strip()
    except OSError:
        return False
    return stamp == hashlib.sha256(source).hexdigest()


def _select() -> tuple[ModuleType, str]:
    if _built is None:
        _log.warning("the compiled pacsradar.files.core does not import; the audit runs as plain Python")
        return load_source(), "python (compiled core does not import)"
    current = compiled_is_current()
    if current is None:
        return _configure(_built), "python"
    if current:
        return _configure(_built), "compiled (mypyc)"
    _log.warning(
        "the compiled pacsradar.files.core is older than core.py and is ignored (the audit runs "
        "as plain Python, several times slower); rebuild it with: pip install -e ."
    )
    return load_source(), "python (stale compiled core ignored)"


_impl, IMPLEMENTATION = _select()
#: Whether the walker in use is the mypyc-compiled extension.
COMPILED: bool = bool(_impl.COMPILED)

if TYPE_CHECKING:
    from pacsradar.files.core import (
        ARCHIVE,
        ARCHIVE_KINDS,
        DICOMDIR_SOP_CLASS,
        MALFORMED,
        NEED_MORE,
        NOT_DICOM,
        OK,
        UNSUPPORTED,
        Counts,
        Header,
        TreeWalker,
        archive_kind,
        guess_dataset,
        needs_python,
        os_reason,
        parse,
        read_files,
        special_kind,
    )
else:
    ARCHIVE = _impl.ARCHIVE
    ARCHIVE_KINDS = _impl.ARCHIVE_KINDS
    DICOMDIR_SOP_CLASS = _impl.DICOMDIR_SOP_CLASS
    MALFORMED = _impl.MALFORMED
    NEED_MORE = _impl.NEED_MORE
    NOT_DICOM = _impl.NOT_DICOM
    OK = _impl.OK
    UNSUPPORTED = _impl.UNSUPPORTED
    Counts = _impl.Counts
    Header = _impl.Header
    TreeWalker = _impl.TreeWalker
    archive_kind = _impl.archive_kind
    guess_dataset = _impl.guess_dataset
    needs_python = _impl.needs_python
    os_reason = _impl.os_reason
    parse = _impl.parse
    read_files = _impl.read_files
    special_kind = _impl.special_kind


__all__ = [
    "ARCHIVE",
    "ARCHIVE_KINDS",
    "COMPILED",
    "DICOMDIR_SOP_CLASS",
    "IMPLEMENTATION",
    "MALFORMED",
    "NEED_MORE",
    "NOT_DICOM",
    "OK",
    "STAMP",
    "UNSUPPORTED",
    "Counts",
    "Header",
    "TreeWalker",
    "archive_kind",
    "compiled_is_current",
    "guess_dataset",
    "load_source",
    "needs_python",
    "os_reason",
    "parse",
    "read_files",
    "source_path",
    "special_kind",
]
