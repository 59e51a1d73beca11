"""Endpoints imported from other scanners: nmap XML, masscan JSON/list, Shodan, plain lists.

The file is untrusted input: its size is bounded and every host and port is validated by the
same parsers as the command line's targets.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from pacsradar.errors import TargetError
from pacsradar.targets.parse import ImportEntry, _port, _read_bounded, _show, _single_host

#: or a decompression bomb does not exhaust memory.
MAX_IMPORT_BYTES: Final = 200 * 1024 * 1024
#: Bound on an ``@file`` target list; each line becomes one interval held in memory.

_BRACKETED = re.compile(r"\[([^\]]*)\](?::([^:]*))?")
# nmap writes a bare ``<!DOCTYPE nmaprun>``; anything richer (internal subset, SYSTEM/PUBLIC
# identifiers) is what entity-expansion and external-entity attacks need, so it is refused.
_BARE_DOCTYPE = re.compile(r"<!DOCTYPE\s+[A-Za-z_][\w.:-]*\s*>")
_DOCTYPE_OR_ENTITY = re.compile(r"<!(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_JSON_ARRAY = re.compile(r"\[\s*[{\]]")
_TRAILING_COMMA = re.compile(r",\s*\]\s*\Z")


# Imports from other scanners


def load_import(path: Path, *, max_bytes: int = MAX_IMPORT_BYTES) -> list[ImportEntry]:
    """Read endpoints found by another tool, detecting the format from the content.

    Supported: nmap XML (``-oX``; hosts with status ``up``, TCP ports with state ``open``; a host
    without a ``<ports>`` element, as from ``-sn``, yields ``(host, None)``), masscan JSON
    (``-oJ``, also as JSON lines) and list (``-oL``) output, Shodan JSON lines (``ip_str`` and
    ``port``; gzip-compressed downloads too), and a plain list of ``host``, ``host:port`` or
    ``[v6]:port`` lines with ``#`` comments. Only TCP is kept: pacsradar speaks TCP protocols.

    The file is untrusted input: size is bounded, every host and port is validated, XML with any
    DOCTYPE beyond nmap's bare one or any ENTITY is refused (entity expansion, XXE). Entries are
    deduplicated in file order. Exclusions are applied later, by the :class:`Scope`.
    """
    text = _read_bounded(path, max_bytes, gunzip=True)
    head = text.lstrip()
    parser: Callable[[str], list[ImportEntry]]
    if head.startswith("<"):
        fmt, parser = "nmap XML (-oX)", _from_nmap_xml
    elif _JSON_ARRAY.match(head):  # not "[" alone: a plain list may start with "[::1]:104"
        fmt, parser = "masscan JSON (-oJ)", _from_masscan_json
    elif head.startswith("{"):
        fmt, parser = "JSON lines (Shodan or masscan)", _from_json_lines
    elif _looks_like_masscan_list(text):
        fmt, parser = "masscan list (-oL)", _from_masscan_list
    else:
        fmt, parser = "host[:port] list", _from_plain_list
    try:
        entries = parser(text)
    except TargetError as exc:
        # Say which format was tried: a file that is not what its user thought it was
        # (an HTML page saved as .xml, a CSV) is then recognisable from the message.
        raise TargetError(f"read as {fmt}: {exc}") from None
    return list(dict.fromkeys(entries))


def _at_line(number: int, exc: TargetError) -> TargetError:
    return TargetError(f"line {number}: {exc}")


class _NmapTarget:
    """Streaming ElementTree target for nmap ``-oX``: keeps only what it needs, no tree.

    Only ``address``/``status`` directly under ``host`` count: nmap ≥ 7.80 also writes
    ``<hosthint>`` elements with their own addresses for hosts that may be down.
    """

    def __init__(self) -> None:
        self.entries: list[ImportEntry] = []
        self.root: str | None = None
        self._stack: list[str] = []
        self._reset_host()

    def _reset_host(self) -> None:
        self._up = False
        self._addr: str | None = None
        self._saw_ports = False
        self._open: list[int] = []
        self._port: int | None = None
        self._port_open = False

    def start(self, tag: str, attrs: dict[str, str]) -> None:
        parent = self._stack[-1] if self._stack else None
        self._stack.append(tag)
        if self.root is None:
            self.root = tag
        if tag == "host" and parent == self.root:
            self._reset_host()
        elif parent == "host" and tag == "status":
            self._up = attrs.get("state") == "up"
        elif parent == "host" and tag == "address":
            if attrs.get("addrtype") in ("ipv4", "ipv6") and self._addr is None:
                self._addr = _single_host(attrs.get("addr", ""))
        elif parent == "host" and tag == "ports":
            self._saw_ports = True
        elif parent == "ports" and tag == "port":
            proto_ok = attrs.get("protocol", "tcp") == "tcp"
            self._port = _port(attrs.get("portid", "")) if proto_ok else None
            self._port_open = False
        elif parent == "port" and tag == "state":
            self._port_open = attrs.get("state") == "open"

    def end(self, tag: str) -> None:
        self._stack.pop()
        parent = self._stack[-1] if self._stack else None
        if tag == "port" and parent == "ports":
            if self._port is not None and self._port_open:
                self._open.append(self._port)
            self._port = None
        elif tag == "host" and parent == self.root and self._up and self._addr is not None:
            if self._saw_ports:
                self.entries.extend((self._addr, port) for port in self._open)
            else:
                self.entries.append((self._addr, None))

    def close(self) -> None:
        return None


def _from_nmap_xml(text: str) -> list[ImportEntry]:
    for match in _DOCTYPE_OR_ENTITY.finditer(text):
        if not _BARE_DOCTYPE.match(text, match.start()):
            raise TargetError("XML import refused: it declares a DTD or entities")
    target = _NmapTarget()
    # Safe without defusedxml: DTDs and entities were refused above, and ElementTree's expat
    # never fetches external resources. The streaming target keeps no tree in memory.
    parser: ET.XMLParser[None] = ET.XMLParser(target=target)  # noqa: S314
    try:
        parser.feed(text)
        parser.close()
    except ET.ParseError as exc:
        raise TargetError(f"malformed XML import: {exc}") from None
    if target.root != "nmaprun":
        raise TargetError("XML import is not nmap -oX output (root element is not nmaprun)")
    return target.entries


def _json_port(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TargetError(f"invalid port (1-65535): {_show(value)}")
    return _port(str(value))


def _json_host(value: object) -> str:
    if not isinstance(value, str):
        raise TargetError(f"invalid host: {_show(value)}")
    return _single_host(value)


def _from_masscan_object(obj: dict[str, object]) -> list[ImportEntry]:
    """One masscan record: ``{ip, ports:[{port, proto, status}]}`` or ndjson ``{ip, port}``."""
    if "ip" not in obj:
        return []  # masscan's trailing {"finished": 1} and similar bookkeeping records
    host = _json_host(obj["ip"])
    records = obj.get("ports", [obj])
    if not isinstance(records, list):
        raise TargetError("masscan record has a 'ports' value that is not a list")
    out: list[ImportEntry] = []
    for record in records:
        if not isinstance(record, dict):
            raise TargetError("masscan port entry is not an object")
        status = record.get("status")
        data = record.get("data")
        if status is None and isinstance(data, dict):
            status = data.get("status")
        if status == "open" and record.get("proto", "tcp") == "tcp":
            out.append((host, _json_port(record.get("port"))))
    return out


def _from_masscan_json(text: str) -> list[ImportEntry]:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        try:  # masscan releases before 1.0.6 left a comma before the closing bracket
            doc = json.loads(_TRAILING_COMMA.sub("]", text))
        except json.JSONDecodeError as exc:
            raise TargetError(f"malformed JSON import: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(doc, list):
        raise TargetError("JSON import is not a list of masscan records")
    out: list[ImportEntry] = []
    for obj in doc:
        if not isinstance(obj, dict):
            raise TargetError("JSON import holds an element that is not an object")
        out.extend(_from_masscan_object(obj))
    return out


def _from_json_lines(text: str) -> list[ImportEntry]:
    """JSON lines: Shodan (``ip_str``, ``port``, ``transport``) or masscan records."""
    out: list[ImportEntry] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise TargetError(f"line {number}: malformed JSON: {exc.msg}") from None
        if not isinstance(obj, dict):
            raise TargetError(f"line {number}: JSON value is not an object")
        try:
            if "ip_str" in obj:
                if obj.get("transport", "tcp") == "tcp":
                    out.append((_json_host(obj["ip_str"]), _json_port(obj.get("port"))))
            else:
                out.extend(_from_masscan_object(obj))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out


def _meaningful_lines(text: str) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(text.splitlines(), start=1):
        content = line.partition("#")[0].strip()
        if content:
            yield number, content


def _looks_like_masscan_list(text: str) -> bool:
    """masscan ``-oL``: ``#masscan`` header, or a first line like ``open tcp 104 <ip> <ts>``."""
    if text.lstrip().startswith("#masscan"):
        return True
    for _number, line in _meaningful_lines(text):
        fields = line.split()
        return len(fields) >= 4 and fields[0] in ("open", "closed", "banner")
    return False


def _from_masscan_list(text: str) -> list[ImportEntry]:
    out: list[ImportEntry] = []
    for number, line in _meaningful_lines(text):
        fields = line.split()
        if fields[0] != "open":
            continue  # "banner" and "closed" lines carry no new open port
        if len(fields) < 4:
            raise TargetError(f"line {number}: expected 'open <proto> <port> <ip> ...'")
        if fields[1] != "tcp":
            continue
        try:
            out.append((_single_host(fields[3]), _port(fields[2])))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out


def _from_plain_list(text: str) -> list[ImportEntry]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` per line; a bare IPv6 has no port."""
    out: list[ImportEntry] = []
    for number, line in _meaningful_lines(text):
        try:
            bracketed = _BRACKETED.fullmatch(line)
            if bracketed is not None:
                host, port = bracketed.group(1), bracketed.group(2)
                if host and ":" not in host:
                    raise TargetError(f"brackets are for IPv6 addresses: {_show(line)}")
            elif line.count(":") == 1:
                host, port = line.split(":")
            else:
                host, port = line, None
            out.append((_single_host(host), None if port is None else _port(port)))
        except TargetError as exc:
            raise _at_line(number, exc) from None
    return out


# Imports read from a pipe, one line at a time (``--import -``)

#: Longest line a streamed import may send; a longer one is refused as that line's error.
MAX_STREAM_LINE: Final = 64 * 1024


class LineImport:
    """Another scanner's output parsed line by line as it arrives (``--import -``).

    masscan ``-oL`` (``open tcp 4242 192.0.2.7 1700000000``), masscan ``-oJ`` (one record a line
    between ``[`` and ``]``, commas before or after) and ``-oD`` (JSON lines), zmap's default
    output (one address a line, scanned on the scan's ports), zmap ``-O csv`` with a header
    naming ``saddr`` (and ``sport``: the port that answered; rows whose ``success`` is 0 or
    whose ``classification`` is not ``synack`` are skipped), Shodan JSON lines and plain
    ``host[:port]`` lists. The format is told from the first meaningful line, as
    :func:`load_import` tells it from a file's start.

    :meth:`feed` returns the line's entries (often none) or raises :class:`TargetError` naming
    the line number; the caller decides whether a bad line ends the stream.
    """

    def __init__(self) -> None:
        self.format: str | None = None
        self.number = 0
        self._saddr = 0
        self._sport: int | None = None
        self._success: int | None = None
        self._classification: int | None = None

    def feed(self, line: str) -> list[ImportEntry]:
        self.number += 1
        if len(line) > MAX_STREAM_LINE:
            raise TargetError(f"line {self.number}: longer than {MAX_STREAM_LINE:,} characters")
        text = line.strip().lstrip("\ufeff")
        if not text:
            return []
        if self.format is None:
            self.format = self._detect(text)
            if self.format == "zmap CSV":
                self._header(text)
                return []
        try:
            return self._parse(text)
        except TargetError as exc:
            message = re.sub(r"^line \d+: ", "", str(exc))  # the per-text parsers' own count
            raise TargetError(f"line {self.number} (read as {self.format}): {message}") from None

    @staticmethod
    def _detect(text: str) -> str:
        if text.startswith("#masscan"):
            return "masscan list (-oL)"
        if text[0] in "[{,":
            return "masscan JSON (-oJ) or JSON lines"
        fields = text.split()
        if len(fields) >= 4 and fields[0] in ("open", "closed", "banner"):
            return "masscan list (-oL)"
        if "saddr" in [c.strip() for c in text.split(",")]:
            return "zmap CSV"
        return "host[:port] list"

    def _header(self, text: str) -> None:
        columns = [c.strip() for c in text.split(",")]
        self._saddr = columns.index("saddr")
        for name in ("sport", "success", "classification"):
            setattr(self, f"_{name}", columns.index(name) if name in columns else None)

    def _parse(self, text: str) -> list[ImportEntry]:
        fmt = self.format
        if fmt == "masscan list (-oL)":
            if text.startswith("#"):
                return []
            return _from_masscan_list(text)
        if fmt == "masscan JSON (-oJ) or JSON lines":
            body = text.strip(",").strip()
            if body in ("", "[", "]"):
                return []
            return _from_json_lines(body)
        if fmt == "zmap CSV":
            return self._zmap_row(text)
        return _from_plain_list(text)

    def _zmap_row(self, text: str) -> list[ImportEntry]:
        row = [c.strip() for c in text.split(",")]
        wanted = [i for i in (self._saddr, self._sport, self._success, self._classification) if i is not None]
        if len(row) <= max(wanted):
            raise TargetError(f"expected at least {max(wanted) + 1} comma-separated fields")
        if self._success is not None and row[self._success] not in ("1", "true", "True"):
            return []
        if self._classification is not None and row[self._classification] not in ("synack", "syn-ack"):
            return []
        host = _single_host(row[self._saddr])
        return [(host, None if self._sport is None else _port(row[self._sport]))]
