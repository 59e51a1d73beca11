"""Bounded, decompression-bomb-safe decoding of HTTP bodies (``Content-Encoding``)."""

from __future__ import annotations

import zlib

from pacsradar.errors import (
    ProtocolError,
    SizeLimitError,
)


class _Decoder:
    def feed(self, data: bytes, room: int) -> bytes:
        raise NotImplementedError

    def finish(self, room: int) -> bytes:
        return b""


class _Identity(_Decoder):
    def feed(self, data: bytes, room: int) -> bytes:
        return data


class _Zlib(_Decoder):
    """Decodes with ``max_length`` so one small chunk cannot inflate to gigabytes in memory."""

    def __init__(self, wbits: int, *, raw_fallback: bool = False) -> None:
        self._obj = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._started = False

    def feed(self, data: bytes, room: int) -> bytes:
        room = max(room, 1)  # max_length=0 would mean "unbounded" to zlib
        try:
            out = self._obj.decompress(data, room)
        except zlib.error as exc:
            if self._raw_fallback and not self._started:
                # "deflate" is meant to be zlib-wrapped (RFC 9110 §8.4.1.2) but some servers
                # send raw deflate; retry once as raw.
                self._obj = zlib.decompressobj(-zlib.MAX_WBITS)
                self._raw_fallback = False
                return self.feed(data, room)
            raise ProtocolError("malformed compressed body") from exc
        self._started = True
        if self._obj.unconsumed_tail:
            raise SizeLimitError("decompressed body exceeds the size bound")
        return out

    def finish(self, room: int) -> bytes:
        try:
            out = self._obj.flush(max(room, 1))
        except zlib.error as exc:
            raise ProtocolError("malformed compressed body") from exc
        return out


def _decoder_for(encoding: str) -> _Decoder:
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return _Identity()
    if len(codings) > 1:
        raise ProtocolError("stacked content codings are not decoded")
    coding = codings[0]
    if coding in ("gzip", "x-gzip"):
        return _Zlib(16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return _Zlib(zlib.MAX_WBITS, raw_fallback=True)
    raise ProtocolError("unsupported content coding")
