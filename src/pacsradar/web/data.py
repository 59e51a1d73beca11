"""Typed views of the web data tables (``pacsradar/data/*.json``), loaded lazily and once.

The tables carry a ``source`` per entry (provenance); loading validates the shapes so a bad
edit fails the tests rather than a scan.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

from pacsradar.vulns import Backport, CveEntry, cve_table, parse_version


def _load(name: str) -> dict[str, Any]:
    text = resources.files("pacsradar").joinpath("data", name).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("schema") != 1:
        raise ValueError(f"{name}: unsupported schema")
    return data


def _str_tuple(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("expected a list of strings")
    return tuple(value)


def _int_tuple(value: object) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, int) for v in value):
        raise ValueError("expected a list of integers")
    return tuple(value)


def _source(entry: dict[str, Any], where: str) -> str:
    source = entry.get("source")
    if not isinstance(source, str) or not source:
        raise ValueError(f"{where}: every entry needs a source")
    return source


# ---------------------------------------------------------------------------- fingerprints


@dataclass(frozen=True)
class Probe:
    id: str
    path: str
    when: str  # always | product | unidentified
    product: str | None
    ports: tuple[int, ...]
    source: str


@dataclass(frozen=True)
class Signature:
    product: str
    probe: str  # probe id or "*"
    component: bool
    status: tuple[int, ...]
    title: re.Pattern[str] | None
    body: re.Pattern[str] | None
    header: str | None
    header_regex: re.Pattern[str] | None
    json_keys: tuple[str, ...]
    json_list_keys: tuple[str, ...]
    version_json: str | None
    version_regex: re.Pattern[str] | None
    confidence: str
    source: str


@dataclass(frozen=True)
class ProductPaths:
    dicomweb: tuple[str, ...]
    metrics: tuple[str, ...]
    webdav: tuple[str, ...]
    statistics: str | None
    default_aet: str | None
    #: an HTML page that lists the patients (PixelMed's ?requestType=PATIENTLIST)
    patient_list: str | None = None


@dataclass(frozen=True)
class FingerprintTable:
    max_probes: int
    probes: tuple[Probe, ...]
    signatures: tuple[Signature, ...]
    products: dict[str, ProductPaths]

    def paths_for(self, product: str | None) -> ProductPaths:
        if product and product in self.products:
            return self.products[product]
        return self.products["*"]


def _regex(value: object) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("regex must be a string")
    return re.compile(value)


@functools.cache
def fingerprint_table() -> FingerprintTable:
    data = _load("web_fingerprints.json")
    probes = tuple(
        Probe(
            id=p["id"],
            path=p["path"],
            when=p["when"],
            product=p.get("product"),
            ports=_int_tuple(p.get("ports")),
            source=_source(p, f"probe {p['id']}"),
        )
        for p in data["probes"]
    )
    for probe in probes:
        if probe.when not in ("always", "product", "unidentified"):
            raise ValueError(f"probe {probe.id}: bad 'when'")
    signatures = tuple(
        Signature(
            product=s["product"],
            probe=s["probe"],
            component=bool(s.get("component", False)),
            status=_int_tuple(s.get("status")),
            title=_regex(s.get("title")),
            body=_regex(s.get("body")),
            header=(s.get("header") or None),
            header_regex=_regex(s.get("regex")),
            json_keys=_str_tuple(s.get("json_keys")),
            json_list_keys=_str_tuple(s.get("json_list_keys")),
            version_json=s.get("version_json"),
            version_regex=_regex(s.get("version_regex")),
            confidence=s["confidence"],
            source=_source(s, f"signature {s['product']}"),
        )
        for s in data["signatures"]
    )
    products = {
        name: ProductPaths(
            dicomweb=_str_tuple(p.get("dicomweb")),
            metrics=_str_tuple(p.get("metrics")),
            webdav=_str_tuple(p.get("webdav")),
            statistics=p.get("statistics"),
            default_aet=p.get("default_aet"),
            patient_list=p.get("patient_list"),
        )
        for name, p in data["products"].items()
        if _source(p, f"product {name}")
    }
    if "*" not in products:
        raise ValueError("web_fingerprints.json: products needs a '*' entry")
    return FingerprintTable(int(data["max_probes"]), probes, signatures, products)


# ---------------------------------------------------------------------------- credentials


@dataclass(frozen=True)
class DefaultCredential:
    username: str
    password: str
    mechanism: str  # basic | form | any
    source: str


@dataclass(frozen=True)
class CredentialTable:
    max_attempts_per_host: int
    lockout_markers: tuple[str, ...]
    failure_markers: tuple[str, ...]
    products: dict[str, tuple[DefaultCredential, ...]]

    def for_product(self, product: str | None) -> tuple[DefaultCredential, ...]:
        if product and product in self.products:
            return self.products[product]
        return self.products.get("*", ())


@functools.cache
def credential_table() -> CredentialTable:
    data = _load("default_credentials.json")
    policy = data["policy"]
    _source(policy, "policy")
    products = {
        name: tuple(
            DefaultCredential(
                username=c["username"],
                password=c["password"],
                mechanism=c.get("mechanism", "any"),
                source=_source(c, f"credential for {name}"),
            )
            for c in entries
        )
        for name, entries in data["products"].items()
    }
    return CredentialTable(
        max_attempts_per_host=int(policy["max_attempts_per_host"]),
        lockout_markers=_str_tuple(policy["lockout_markers"]),
        failure_markers=_str_tuple(policy["failure_markers"]),
        products=products,
    )


# ---------------------------------------------------------------------------- CVEs
# The CVE table is shared with the DICOM side, so it lives in pacsradar.vulns (standard library
# only); Backport, CveEntry, cve_table and parse_version are re-exported here for the web checks.


__all__ = [
    "Backport",
    "CredentialTable",
    "CveEntry",
    "DefaultCredential",
    "FingerprintTable",
    "Probe",
    "ProductPaths",
    "Signature",
    "credential_table",
    "cve_table",
    "fingerprint_table",
    "parse_version",
]
