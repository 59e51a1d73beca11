"""Target scope parsing, lazy expansion, exclusions and scanner-output imports.

Pure parsing: no packet is sent and no name is resolved. Addresses are 127.0.0.0/8, ::1 and
the documentation prefixes (RFC 5737 192.0.2.0/24, RFC 3849 2001:db8::/32).
"""

from __future__ import annotations

import gzip
import itertools
import json
import tracemalloc
from pathlib import Path

import pytest

from pacsradar.errors import ScopeTooLargeError, TargetError
from pacsradar.targets import (
    DEFAULT_MAX_HOSTS,
    MAX_SHOWN,
    Scope,
    load_import,
    parse_ports,
    parse_scope,
    scope_from_import,
)


def hosts(scope: Scope) -> list[str]:
    return list(scope.hosts())


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# ------------------------------------------------------------------------------------------
# Syntax


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1"]),
        ("::1", ["::1"]),
        ("[::1]", ["::1"]),
        ("2001:DB8::0001", ["2001:db8::1"]),
        ("127.0.0.0/30", ["127.0.0.0", "127.0.0.1", "127.0.0.2", "127.0.0.3"]),
        ("127.0.0.5/31", ["127.0.0.4", "127.0.0.5"]),  # host bits masked, as nmap does
        ("::1/128", ["::1"]),
        ("2001:db8::/126", ["2001:db8::", "2001:db8::1", "2001:db8::2", "2001:db8::3"]),
        ("127.0.0.1-3", ["127.0.0.1", "127.0.0.2", "127.0.0.3"]),
        ("127.0.0.254-127.0.1.1", ["127.0.0.254", "127.0.0.255", "127.0.1.0", "127.0.1.1"]),
        ("::1-::3", ["::1", "::2", "::3"]),
        ("PACS-01.Example.ORG.", ["pacs-01.example.org"]),
        ("localhost", ["localhost"]),
        ("127.0.0.1, 127.0.0.3,pacs", ["127.0.0.1", "127.0.0.3", "pacs"]),
    ],
)
def test_each_syntax_expands_to_its_hosts(spec: str, expected: list[str]) -> None:
    # Given one target argument in one of the accepted syntaxes
    # When it is parsed
    scope = parse_scope([spec])
    # Then exactly the expected hosts are produced and counted
    assert hosts(scope) == expected
    assert scope.count() == len(expected)


def test_last_octet_and_full_ranges_are_inclusive() -> None:
    # Given the two range forms from the docs
    # When parsed
    short = parse_scope(["127.0.0.1-40"])
    full = parse_scope(["127.0.0.1-127.0.1.5"])
    # Then both ends are included
    assert short.count() == 40
    assert hosts(short)[-1] == "127.0.0.40"
    assert full.count() == 255 + 6  # .1-.255, then .0-.5
    assert hosts(full)[-1] == "127.0.1.5"


def test_at_file_reads_one_spec_per_line_with_comments(tmp_path: Path) -> None:
    # Given a target file with comments, blank lines, an inline comment and a list on one line
    path = write(
        tmp_path / "targets.txt",
        "# radiology VLAN\n\n127.0.0.1\n127.0.0.2-3   # modalities\n::1, pacs.example.org\n",
    )
    # When it is referenced with @ next to an ordinary spec
    scope = parse_scope([f"@{path}", "127.0.0.9"])
    # Then every listed target is in scope and comments are ignored
    assert hosts(scope) == [
        "127.0.0.1",
        "127.0.0.2",
        "127.0.0.3",
        "127.0.0.9",
        "::1",
        "pacs.example.org",
    ]


def test_nested_at_file_is_refused(tmp_path: Path) -> None:
    # Given a target file that references another file
    inner = write(tmp_path / "inner.txt", "127.0.0.1\n")
    outer = write(tmp_path / "outer.txt", f"127.0.0.2\n@{inner}\n")
    # When it is parsed
    # Then the nesting is refused, naming the line
    with pytest.raises(TargetError, match=r"line 2: nested @file"):
        parse_scope([f"@{outer}"])


def test_error_inside_at_file_names_line_and_token(tmp_path: Path) -> None:
    # Given a target file with a typo on line 3
    path = write(tmp_path / "t.txt", "127.0.0.1\n# ok\n127.0.0.300\n")
    # When it is parsed
    # Then the error names the line and only the bad token
    with pytest.raises(TargetError, match=r"line 3: invalid IPv4.*'127\.0\.0\.300'"):
        parse_scope([f"@{path}"])


def test_bare_string_instead_of_list_is_a_programming_error() -> None:
    # Given a caller passing "127.0.0.1" instead of ["127.0.0.1"]
    # When parsed
    # Then it fails instead of scanning the characters "1", "2", "7"...
    with pytest.raises(TypeError):
        parse_scope("127.0.0.1")


def test_no_targets_is_an_error() -> None:
    # Given no specs and no imports
    # When parsed
    # Then the user is told
    with pytest.raises(TargetError, match="no targets"):
        parse_scope([])


# ------------------------------------------------------------------------------------------
# Typos and hostile tokens


@pytest.mark.parametrize(
    ("spec", "shown"),
    [
        ("127.0.0.300", "127.0.0.300"),
        ("127.0.0", "127.0.0"),
        ("010.0.0.1", "010.0.0.1"),
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("::1/129", "::1/129"),
        ("127.0.0.0/8/8", "127.0.0.0/8/8"),
        ("1.2.3.4-1.2.3.1", "1.2.3.4-1.2.3.1"),
        ("127.0.0.9-2", "127.0.0.9-2"),
        ("127.0.0.1-256", "127.0.0.1-256"),
        ("127.0.0.1-::1", "127.0.0.1-::1"),
        ("::5-::1", "::5-::1"),
        ("::1-127.0.0.1", "::1-127.0.0.1"),
        ("127.0.0.1-pacs", "127.0.0.1-pacs"),
        ("fe80::1%eth0", "fe80::1%eth0"),
        ("gggg::1", "gggg::1"),
        ("pacs_01", "pacs_01"),
        ("-pacs", "-pacs"),
        ("pacs-", "pacs-"),
        ("pacs..example.org", "pacs..example.org"),
        ("pacs example", "pacs example"),
        ("pacs.example.123", "pacs.example.123"),
        ("a" * 64 + ".example.org", "a" * 64),
        ("pacs\u212a.example.org", "pacs\u212a"),  # KELVIN SIGN would lower() to a plain "k"
    ],
)
def test_typos_raise_target_error_naming_the_token(spec: str, shown: str) -> None:
    # Given a mistyped or garbage target
    # When parsed
    with pytest.raises(TargetError) as caught:
        parse_scope([spec])
    # Then the message names the offending token
    assert shown in str(caught.value)


def test_overlong_hostname_is_refused() -> None:
    # Given a name of valid labels but longer than 253 characters
    name = ".".join(["a" * 60] * 5)
    # When parsed
    # Then it is refused
    with pytest.raises(TargetError):
        parse_scope([name])


@pytest.mark.parametrize("spec", ["", "127.0.0.1,,127.0.0.2", "127.0.0.1,", " ", "@"])
def test_empty_specs_are_errors(spec: str) -> None:
    # Given an empty spec or an empty element in a list
    # When parsed
    # Then it is an error rather than silently dropped
    with pytest.raises(TargetError):
        parse_scope([spec])


def test_missing_at_file_names_the_file(tmp_path: Path) -> None:
    # Given a reference to a file that does not exist
    missing = tmp_path / "missing.txt"
    # When parsed
    # Then the error names the file
    with pytest.raises(TargetError, match=r"cannot read .*missing\.txt"):
        parse_scope([f"@{missing}"])


def test_error_messages_are_bounded_and_decontrolled() -> None:
    # Given a huge token carrying a terminal escape sequence
    token = "\x1b[2J" + "x" * 5000
    # When parsed
    with pytest.raises(TargetError) as caught:
        parse_scope([token])
    message = str(caught.value)
    # Then the message quotes at most MAX_SHOWN characters of it and no control character
    assert len(message) < MAX_SHOWN + 80
    assert "\x1b" not in message


# ------------------------------------------------------------------------------------------
# Exclusions and deduplication


def test_exclusions_win_over_inclusions() -> None:
    # Given a /24 with one address, a sub-range and a name excluded
    scope = parse_scope(
        ["127.0.0.0/24", "pacs.example.org", "viewer.example.org"],
        ["127.0.0.1", "127.0.0.128/25", "PACS.example.org"],
    )
    # When expanded
    listed = hosts(scope)
    # Then no excluded host appears and the count agrees
    assert "127.0.0.1" not in listed
    assert "127.0.0.128" not in listed
    assert "pacs.example.org" not in listed
    assert listed[:2] == ["127.0.0.0", "127.0.0.2"]
    assert listed[-2:] == ["127.0.0.127", "viewer.example.org"]
    assert scope.count() == len(listed) == 128 - 1 + 1


def test_exclusions_accept_the_same_syntax_including_at_file(tmp_path: Path) -> None:
    # Given an exclusion file mixing a range, a CIDR and a comma list
    excl = write(tmp_path / "exclude.txt", "# life-critical\n127.0.0.1-5\n127.0.0.8/30,::1\n")
    # When it excludes from a small scope
    scope = parse_scope(["127.0.0.0-127.0.0.12", "::1-::2"], [f"@{excl}"])
    # Then exactly the non-excluded hosts remain
    assert hosts(scope) == ["127.0.0.0", "127.0.0.6", "127.0.0.7", "127.0.0.12", "::2"]


def test_excluding_everything_leaves_an_empty_scope() -> None:
    # Given a scope entirely covered by its exclusion
    scope = parse_scope(["127.0.0.0/24"], ["127.0.0.0/16"])
    # When inspected
    # Then it is empty and falsy
    assert scope.count() == 0
    assert not scope
    assert hosts(scope) == []


def test_is_excluded_checks_addresses_learned_later() -> None:
    # Given exclusions by CIDR, IPv6 and name
    scope = parse_scope(["pacs.example.org"], ["127.0.0.0/24", "2001:db8::/64", "old.example.org"])
    # When the engine checks addresses it resolved
    # Then an IP exclusion still wins over the hostname target
    assert scope.is_excluded("127.0.0.7")
    assert not scope.is_excluded("127.0.1.7")
    assert scope.is_excluded("2001:db8::5")
    assert scope.is_excluded("[2001:db8::5]")
    assert scope.is_excluded("2001:db8::5%eth0")  # the zone does not let it escape
    assert scope.is_excluded("::ffff:127.0.0.7")  # nor does an IPv4-mapped form
    assert scope.is_excluded("OLD.example.org.")
    assert not scope.is_excluded("pacs.example.org")


def test_is_excluded_rejects_garbage() -> None:
    # Given a scope
    scope = parse_scope(["127.0.0.1"])
    # When asked about something that is neither address nor name
    # Then it refuses rather than answering "not excluded"
    with pytest.raises(TargetError):
        scope.is_excluded("not a host!")


def test_overlapping_specs_are_scanned_once() -> None:
    # Given the same addresses listed several ways
    scope = parse_scope(
        ["127.0.0.0/24", "127.0.0.0/25", "127.0.0.5", "127.0.0.250-127.0.1.3", "127.0.0.5"],
    )
    # When expanded
    listed = hosts(scope)
    # Then each address appears once and the count agrees
    assert len(listed) == len(set(listed)) == scope.count() == 256 + 4
    assert listed == sorted(listed, key=lambda h: tuple(int(p) for p in h.split(".")))


def test_duplicate_names_and_adjacent_blocks_merge() -> None:
    # Given two adjacent blocks and a name given twice in different case
    scope = parse_scope(["127.0.0.0/25", "127.0.0.128/25", "pacs", "PACS."])
    # When counted
    # Then the blocks merge and the name counts once
    assert scope.count() == 257
    assert scope.hostnames == ("pacs",)


def test_contains_answers_membership_without_iteration() -> None:
    # Given a /8 minus a /24
    scope = parse_scope(["127.0.0.0/8"], ["127.0.0.0/24"], allow_large=True)
    # When membership is asked
    # Then it answers by interval lookup
    assert "127.200.1.1" in scope
    assert "127.0.0.1" not in scope
    assert "::1" not in scope
    assert "bad host!" not in scope


# ------------------------------------------------------------------------------------------
# Size: lazy expansion and the safety limit


def test_slash_eight_is_counted_and_walked_without_materialising() -> None:
    # Given a /8 (pure parsing: nothing is sent)
    tracemalloc.start()
    try:
        # When it is parsed, counted and the first hosts taken
        scope = parse_scope(["127.0.0.0/8"], ["127.0.0.0/31"], allow_large=True)
        count = scope.count()
        first = list(itertools.islice(scope.hosts(), 3))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # Then the count is exact, the hosts come lazily, and memory stays tiny (16M hosts as
    # strings would be ~1 GB)
    assert count == 2**24 - 2
    assert first == ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    assert peak < 1_000_000


def test_huge_ipv6_scope_is_counted_arithmetically() -> None:
    # Given an IPv6 /64 with a /65 excluded
    # When counted
    scope = parse_scope(["2001:db8::/64"], ["2001:db8::/65"], allow_large=True)
    # Then the count is interval arithmetic (iteration could never finish)
    assert scope.count() == 2**63
    assert next(scope.hosts()) == "2001:db8:0:0:8000::"


def test_too_large_scope_needs_the_override() -> None:
    # Given a /8 and the default limit
    # When parsed without the override
    with pytest.raises(ScopeTooLargeError) as caught:
        parse_scope(["127.0.0.0/8"])
    # Then the message gives the count and the flag
    message = str(caught.value)
    assert "16,777,216" in message
    assert "--allow-large-scope" in message
    assert isinstance(caught.value, TargetError)


def test_limit_applies_after_exclusions_and_is_configurable() -> None:
    # Given a /16 plus one (just over the default limit) ...
    specs = ["127.0.0.0/16", "127.1.0.0"]
    with pytest.raises(ScopeTooLargeError):
        parse_scope(specs)
    # When one address is excluded, or the limit raised, or the override given
    # Then it is accepted
    assert parse_scope(specs, ["127.0.0.0"]).count() == DEFAULT_MAX_HOSTS
    assert parse_scope(specs, max_hosts=70_000).count() == DEFAULT_MAX_HOSTS + 1
    assert parse_scope(specs, allow_large=True).count() == DEFAULT_MAX_HOSTS + 1
    with pytest.raises(ScopeTooLargeError):
        parse_scope(["127.0.0.0/30"], max_hosts=3)


# ------------------------------------------------------------------------------------------
# Ports and endpoints


def test_parse_ports_keeps_order_and_drops_duplicates() -> None:
    # Given a port list with a range and repeats
    # When parsed
    ports = parse_ports(" 104, 11112,4000-4003,104,4002 ")
    # Then order of first occurrence is kept
    assert ports == (104, 11112, 4000, 4001, 4002, 4003)
    assert parse_ports("1,65535") == (1, 65535)


@pytest.mark.parametrize(
    "spec", ["", "0", "65536", "104,", "10-5", "abc", "104-", "-104", "1.5", "\u0661\u0660\u0664"]
)
def test_parse_ports_rejects_bad_input(spec: str) -> None:
    # Given a malformed port list
    # When parsed
    # Then it is a TargetError
    with pytest.raises(TargetError):
        parse_ports(spec)


def test_endpoints_are_host_major_with_deduplicated_ports() -> None:
    # Given two hosts
    scope = parse_scope(["127.0.0.1-2"])
    # When endpoints are produced for ports given with a repeat
    endpoints = list(scope.endpoints([104, 11112, 104]))
    # Then each host gets each port once, host by host
    assert endpoints == [
        ("127.0.0.1", 104),
        ("127.0.0.1", 11112),
        ("127.0.0.2", 104),
        ("127.0.0.2", 11112),
    ]
    assert scope.endpoint_count([104, 11112, 104]) == 4


# ------------------------------------------------------------------------------------------
# Imports

NMAP_XML = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<?xml-stylesheet href="file:///usr/share/nmap/nmap.xsl" type="text/xsl"?>
<nmaprun scanner="nmap" args="nmap -n -oX out.xml 127.0.0.0/29" version="7.94">
<hosthint><status state="up" reason="unknown"/><address addr="127.0.0.7" addrtype="ipv4"/>
</hosthint>
<host><status state="up" reason="conn-refused"/>
<address addr="127.0.0.1" addrtype="ipv4"/><address addr="00:11:22:33:44:55" addrtype="mac"/>
<ports><extraports state="closed" count="995"><extrareasons reason="conn-refused" count="995"/>
</extraports>
<port protocol="tcp" portid="104"><state state="open" reason="syn-ack"/><service name="dicom"/>
</port>
<port protocol="tcp" portid="11112"><state state="closed" reason="reset"/></port>
<port protocol="tcp" portid="4242"><state state="open" reason="syn-ack"/></port>
<port protocol="udp" portid="161"><state state="open" reason="udp-response"/></port>
</ports>
<os><portused state="open" proto="tcp" portid="22"/></os>
</host>
<host><status state="down" reason="no-response"/><address addr="127.0.0.2" addrtype="ipv4"/>
<ports><port protocol="tcp" portid="104"><state state="open"/></port></ports></host>
<host><status state="up" reason="syn-ack"/><address addr="::1" addrtype="ipv6"/></host>
<host><status state="up" reason="syn-ack"/><address addr="127.0.0.3" addrtype="ipv4"/>
<ports></ports></host>
<runstats><finished time="1"/><hosts up="3" down="1" total="4"/></runstats>
</nmaprun>
"""


def test_nmap_xml_keeps_up_hosts_and_open_tcp_ports(tmp_path: Path) -> None:
    # Given nmap -oX output with nmap's bare DOCTYPE, a down host, closed/UDP ports, a hosthint,
    # a ping-only host (no <ports>) and a host with no open port
    path = write(tmp_path / "scan.xml", NMAP_XML)
    # When imported
    entries = load_import(path)
    # Then only open TCP ports of up hosts remain; the ping-only host takes the scan's ports
    assert entries == [("127.0.0.1", 104), ("127.0.0.1", 4242), ("::1", None)]


@pytest.mark.parametrize(
    "prolog",
    [
        '<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>',
        '<!DOCTYPE nmaprun SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE nmaprun [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>',
        '<!doctype nmaprun [<!entity x "y">]>',
        '<!-- <!ENTITY hidden "x"> -->',
    ],
)
def test_hostile_xml_with_dtd_or_entities_is_refused(tmp_path: Path, prolog: str) -> None:
    # Given XML declaring a DTD subset, an external identifier or entities
    path = write(
        tmp_path / "evil.xml",
        f'<?xml version="1.0"?>\n{prolog}\n<nmaprun><host><status state="up"/>'
        '<address addr="127.0.0.1" addrtype="ipv4"/></host></nmaprun>\n',
    )
    # When imported
    # Then it is refused before the parser sees it
    with pytest.raises(TargetError, match="DTD or entities"):
        load_import(path)


@pytest.mark.parametrize(
    ("xml", "match"),
    [
        ("<nmaprun><host></nmaprun>", "malformed XML"),
        ("<nmaprun>&undefined;</nmaprun>", "malformed XML"),
        ("<svg><host/></svg>", "not nmap"),
        (
            '<nmaprun><host><status state="up"/><address addr="127.0.0.999" addrtype="ipv4"/>'
            "</host></nmaprun>",
            "127.0.0.999",
        ),
        (
            '<nmaprun><host><status state="up"/><address addr="127.0.0.1" addrtype="ipv4"/>'
            '<ports><port protocol="tcp" portid="70000"><state state="open"/></port></ports>'
            "</host></nmaprun>",
            "70000",
        ),
    ],
)
def test_malformed_nmap_xml_is_a_target_error(tmp_path: Path, xml: str, match: str) -> None:
    # Given broken or non-nmap XML, or nmap XML with an invalid address or port
    path = write(tmp_path / "bad.xml", xml)
    # When imported
    # Then a TargetError explains it
    with pytest.raises(TargetError, match=match):
        load_import(path)


def test_masscan_json_keeps_open_tcp_ports(tmp_path: Path) -> None:
    # Given masscan -oJ output, including its bookkeeping record and the old trailing comma
    path = write(
        tmp_path / "masscan.json",
        "[\n"
        '{ "ip": "127.0.0.1", "timestamp": "1700000000", "ports": [ {"port": 104, '
        '"proto": "tcp", "status": "open", "reason": "syn-ack", "ttl": 64} ] },\n'
        '{ "ip": "127.0.0.2", "timestamp": "1700000000", "ports": [ {"port": 11112, '
        '"proto": "tcp", "status": "closed"} ] },\n'
        '{ "ip": "127.0.0.3", "timestamp": "1700000000", "ports": [ {"port": 161, '
        '"proto": "udp", "status": "open"} ] },\n'
        '{ "ip": "::1", "timestamp": "1700000000", "ports": [ {"port": 4242, '
        '"proto": "tcp", "status": "open"} ] },\n'
        '{ "finished": 1 },\n'
        "]\n",
    )
    # When imported
    # Then only open TCP ports remain
    assert load_import(path) == [("127.0.0.1", 104), ("::1", 4242)]


def test_masscan_list_format(tmp_path: Path) -> None:
    # Given masscan -oL output
    path = write(
        tmp_path / "masscan.txt",
        "#masscan\n"
        "open tcp 104 127.0.0.1 1700000000\n"
        "banner tcp 104 127.0.0.1 1700000001 unknown hello\n"
        "open udp 161 127.0.0.2 1700000000\n"
        "open tcp 11112 127.0.0.3 1700000000\n"
        "# end\n",
    )
    # When imported
    # Then open TCP lines become endpoints
    assert load_import(path) == [("127.0.0.1", 104), ("127.0.0.3", 11112)]


def test_shodan_json_lines_plain_and_gzipped(tmp_path: Path) -> None:
    # Given a Shodan export (JSON lines), also as the .json.gz that `shodan download` writes
    records = [
        {"ip_str": "192.0.2.10", "port": 104, "transport": "tcp", "data": "x"},
        {"ip_str": "192.0.2.11", "port": 161, "transport": "udp"},
        {"ip_str": "2001:db8::10", "port": 11112, "transport": "tcp"},
    ]
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    plain = write(tmp_path / "shodan.json", text)
    packed = tmp_path / "shodan.json.gz"
    packed.write_bytes(gzip.compress(text.encode()))
    expected = [("192.0.2.10", 104), ("2001:db8::10", 11112)]
    # When imported
    # Then TCP services are kept, from either file
    assert load_import(plain) == expected
    assert load_import(packed) == expected


def test_plain_list_of_hosts_and_host_ports(tmp_path: Path) -> None:
    # Given a hand-written list
    path = write(
        tmp_path / "list.txt",
        "[::1]:4242\n# from the CMDB\n127.0.0.1\n127.0.0.1:104\npacs.example.org:11112\n\n"
        "::2\n[::3]\nPACS.example.org:11112\n",
    )
    # When imported (the leading "[" must not be mistaken for a JSON array)
    # Then each line becomes (host, port or None), normalised and deduplicated
    assert load_import(path) == [
        ("::1", 4242),
        ("127.0.0.1", None),
        ("127.0.0.1", 104),
        ("pacs.example.org", 11112),
        ("::2", None),
        ("::3", None),
    ]


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("127.0.0.1\n127.0.0.0/24\n", "line 2: expected one host"),
        ("127.0.0.1:0\n", "line 1: invalid port"),
        ("127.0.0.1:http\n", "line 1: invalid port"),
        ("[127.0.0.1]:104\n", "line 1: brackets"),
        ("127.0.0.1-5\n", "line 1: expected one host"),
        ('{"ip_str": "192.0.2.1", "port": 104}\nnot json\n', "line 2: malformed JSON"),
        ('{"ip_str": "192.0.2.1", "port": true}\n', "line 1: invalid port"),
        ('{"ip_str": 5, "port": 104}\n', "line 1: invalid host"),
        ('[{"ip": "127.0.0.1", "ports": 5}]', "not a list"),
        ("[{}, 2]", "not an object"),
        ('[{"ip": "127.0.0.1"', "malformed JSON"),
        ("#masscan\nopen tcp 104\n", "line 2: expected"),
    ],
)
def test_malformed_imports_are_target_errors(tmp_path: Path, text: str, match: str) -> None:
    # Given a malformed import file
    path = write(tmp_path / "bad.txt", text)
    # When imported
    # Then it fails with a message locating the problem
    with pytest.raises(TargetError, match=match):
        load_import(path)


def test_import_size_is_bounded_even_after_gunzip(tmp_path: Path) -> None:
    # Given a small file and a gzip that inflates past the bound
    small = write(tmp_path / "list.txt", "127.0.0.1\n" * 20)
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(b"\n" * 10_000))
    # When imported with a 100-byte bound
    # Then both are refused
    with pytest.raises(TargetError, match="larger than"):
        load_import(small, max_bytes=100)
    with pytest.raises(TargetError, match="larger than"):
        load_import(bomb, max_bytes=100)


def test_unreadable_or_binary_import_is_a_target_error(tmp_path: Path) -> None:
    # Given a missing file, a directory and a non-UTF-8 file
    binary = tmp_path / "bin.dat"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    # When imported
    # Then each is a TargetError
    for path in (tmp_path / "missing.xml", tmp_path, binary):
        with pytest.raises(TargetError):
            load_import(path)


def test_empty_import_yields_nothing(tmp_path: Path) -> None:
    # Given an empty file (masscan writes one when nothing answered)
    # When imported
    # Then there are no entries
    assert load_import(write(tmp_path / "empty.txt", "")) == []


def test_imported_endpoints_go_through_exclusions() -> None:
    # Given imported entries, some excluded by CIDR, by name and via an IPv4-mapped address
    entries = [
        ("127.0.0.1", 104),
        ("127.0.0.5", 104),
        ("::ffff:127.0.0.6", 104),
        ("old.example.org", 11112),
        ("127.0.1.1", None),
        ("pacs.example.org", None),
    ]
    # When a scope is built from them
    scope = scope_from_import(entries, ["127.0.0.4/30", "old.example.org"])
    # Then excluded endpoints are gone, port-less hosts get the scan's ports, pinned keep theirs
    assert list(scope.endpoints([104, 11112])) == [
        ("127.0.1.1", 104),
        ("127.0.1.1", 11112),
        ("pacs.example.org", 104),
        ("pacs.example.org", 11112),
        ("127.0.0.1", 104),
    ]
    assert scope.pinned == (("127.0.0.1", 104),)
    assert scope.count() == 3
    assert hosts(scope) == ["127.0.1.1", "pacs.example.org", "127.0.0.1"]
    assert scope.endpoint_count([104, 11112]) == 5


def test_imports_combine_with_specs_without_duplicates() -> None:
    # Given a spec range and imported endpoints inside and outside it
    imported = [("127.0.0.1", 104), ("127.0.0.1", 4242), ("127.0.0.9", 104), ("127.0.0.2", None)]
    # When parsed together
    scope = parse_scope(["127.0.0.1-2"], imported=imported)
    endpoints = list(scope.endpoints([104]))
    # Then a pinned endpoint already covered is not repeated, and the others are added
    assert endpoints == [
        ("127.0.0.1", 104),
        ("127.0.0.2", 104),
        ("127.0.0.1", 4242),
        ("127.0.0.9", 104),
    ]
    assert scope.endpoint_count([104]) == len(endpoints)
    assert scope.count() == 3
    assert "127.0.0.9" in scope


def test_imported_entries_are_validated() -> None:
    # Given imported entries with a bad host or port (e.g. built by a plugin)
    # When a scope is built
    # Then they are refused
    with pytest.raises(TargetError):
        scope_from_import([("127.0.0.300", 104)])
    with pytest.raises(TargetError):
        scope_from_import([("127.0.0.1", 0)])


def test_imported_scope_obeys_the_size_limit() -> None:
    # Given more imported hosts than the limit allows
    entries = [(f"127.0.0.{i}", 104) for i in range(1, 11)]
    # When built with a limit of 5
    # Then the override is required
    with pytest.raises(ScopeTooLargeError):
        scope_from_import(entries, max_hosts=5)
    assert scope_from_import(entries, max_hosts=5, allow_large=True).count() == 10
