"""Classify the 128-byte Part 10 preamble (PS3.10 §7.1).

The preamble is free for application use, which lets a file be both a valid DICOM object and an
executable (CVE-2019-11687: a PE header in the preamble, code further on). PS3.10 §7.5 allows TIFF
dual-format files, so a TIFF header is legitimate; all-zero is the norm.
"""

from __future__ import annotations

import struct
from typing import Final

ZERO: Final = "zero"
TIFF: Final = "tiff"
PE: Final = "pe"
ELF: Final = "elf"
MACHO: Final = "macho"
SCRIPT: Final = "script"
UNKNOWN: Final = "unknown"

#: Kinds reported as FILE-PREAMBLE-EXECUTABLE.
EXECUTABLE_KINDS: Final = frozenset({PE, ELF, MACHO, SCRIPT})

_MACHO_MAGICS: Final = (
    b"\xfe\xed\xfa\xce",
    b"\xfe\xed\xfa\xcf",
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # universal (fat) binary
)


def classify(preamble: bytes, head: bytes | None = None) -> str:
    """Kind of a preamble. ``head`` is the file prefix, to follow a PE ``e_lfanew`` past byte 128."""
    if not preamble.strip(b"\x00"):
        return ZERO
    if preamble.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if preamble.startswith(b"MZ") and len(preamble) >= 0x40:
        # DOS header: e_lfanew at 0x3C points to the "PE\0\0" signature (PE/COFF spec §3).
        e_lfanew = struct.unpack_from("<I", preamble, 0x3C)[0]
        data = head if head is not None else preamble
        if data[e_lfanew : e_lfanew + 4] == b"PE\x00\x00":
            return PE
        return UNKNOWN
    if preamble.startswith(b"\x7fELF"):
        return ELF
    if preamble.startswith(_MACHO_MAGICS):
        return MACHO
    if preamble.startswith(b"#!"):
        return SCRIPT
    return UNKNOWN


__all__ = ["ELF", "EXECUTABLE_KINDS", "MACHO", "PE", "SCRIPT", "TIFF", "UNKNOWN", "ZERO", "classify"]
