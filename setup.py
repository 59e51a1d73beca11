"""Build hook: compile the file audit's hot module, ``pacsradar.files.core``, with mypyc.

Everything else is configured in pyproject.toml. The extension is optional: without mypyc or a C
compiler (or with ``PACSRADAR_NO_MYPYC=1``) the install still succeeds and ``core.py`` runs as plain
Python, with identical results, only several times slower (``pacsradar.files.header.IMPLEMENTATION``
says which one runs).

Next to the extension the build writes ``core.sha256``, the SHA-256 of the ``core.py`` it compiled.
``pacsradar.files.header`` uses the extension only if that matches the source beside it, so an
extension left from before an edit of ``core.py`` is ignored (with a warning) instead of silently
shadowing the edit. Rebuild after editing: ``pip install -e .``.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent
CORE = "src/pacsradar/files/core.py"
STAMP = "core.sha256"


def _extensions() -> list[Any]:
    if os.environ.get("PACSRADAR_NO_MYPYC"):
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("pacsradar: mypyc not available, pacsradar.files.core stays pure Python", file=sys.stderr)
        return []
    try:
        # Skip following imports: core imports only the standard library (typeshed is still read),
        # and following its parent packages would type-check all of pacsradar and pydicom (~30 s).
        extensions = mypycify(["--follow-imports=skip", CORE], opt_level="3")
    except (Exception, SystemExit) as exc:  # a mypyc failure must not fail the install
        print(f"pacsradar: mypyc failed ({exc!r}), pacsradar.files.core stays pure Python", file=sys.stderr)
        return []
    for ext in extensions:
        ext.optional = True  # no C compiler: setuptools warns and the install goes on
    return list(extensions)


class BuildExt(build_ext):
    """``build_ext`` that stamps the compiled core with the SHA-256 of its source."""

    def run(self) -> None:
        stamps = {Path(self.get_ext_fullpath(ext.name)).with_name(STAMP) for ext in self.extensions}
        for stamp in stamps:  # an old stamp must not vouch for a build that fails now
            stamp.unlink(missing_ok=True)
        self._built: set[str] = set()
        super().run()
        if self.extensions and len(self._built) == len(self.extensions):
            digest = hashlib.sha256((ROOT / CORE).read_bytes()).hexdigest()
            for stamp in stamps:
                stamp.write_text(digest + "\n", "ascii")

    def build_extension(self, ext: Any) -> None:
        super().build_extension(ext)
        self._built.add(ext.name)


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
