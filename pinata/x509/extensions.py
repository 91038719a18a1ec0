"""A certificate's extensions (RFC 5280 §4.2) as one plain record, lifted
from `cryptography`'s decoding, with the per-extension profile checks
(criticality, required fields) applied as they are read."""

from __future__ import annotations

import ipaddress
from typing import NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from pinata.x509 import dname, names
from pinata.x509.errors import CertificateRefused, Check

# Name-constraint work is (subtrees x names) per pair of certificates; this
# keeps it small however the 32 KiB are spent (limbo's nc-dos cases).
MAX_SUBTREES = 64

# Extensions we process, and may therefore be critical (RFC 5280 §4.2: "MUST
# recognize"). certificatePolicies, policyMappings and inhibitAnyPolicy are
# recognised without building a policy tree: with initial-explicit-policy
# unset and no policyConstraints (which we refuse), the tree can never make
# a path fail (§6.1.5 (a): explicit_policy stays above 0), so skipping it
# changes no outcome.
_MAY_BE_CRITICAL = {
    ExtensionOID.BASIC_CONSTRAINTS,
    ExtensionOID.KEY_USAGE,
    ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
    ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.CERTIFICATE_POLICIES,
    ExtensionOID.POLICY_MAPPINGS,
    ExtensionOID.INHIBIT_ANY_POLICY,
}
# Conforming CAs MUST mark these non-critical: RFC 5280 §4.2.1.1 AKI,
# §4.2.1.2 SKI, §4.2.1.8 subjectDirectoryAttributes, §4.2.1.15 freshestCRL,
# §4.2.2.1 AIA, §4.2.2.2 SIA.
_MUST_BE_NON_CRITICAL = {
    ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_KEY_IDENTIFIER,
    ExtensionOID.SUBJECT_DIRECTORY_ATTRIBUTES,
    ExtensionOID.FRESHEST_CRL,
    ExtensionOID.AUTHORITY_INFORMATION_ACCESS,
    ExtensionOID.SUBJECT_INFORMATION_ACCESS,
}
# ... and these critical: §4.2.1.9 basicConstraints in a CA (checked with cA
# below), §4.2.1.10 nameConstraints, §4.2.1.14 inhibitAnyPolicy.
_MUST_BE_CRITICAL_NAMES = {
    ExtensionOID.NAME_CONSTRAINTS: "nameConstraints",
    ExtensionOID.INHIBIT_ANY_POLICY: "inhibitAnyPolicy",
}

IPAddressOrNetwork = names.IPAddress | names.IPNetwork


class AltNames(NamedTuple):
    """A subjectAltName's entries by form, before any syntax check."""

    dns: tuple[str, ...] = ()  # as written
    ip: tuple[IPAddressOrNetwork, ...] = ()
    email: tuple[str, ...] = ()
    directory: tuple[names.NormalizedName, ...] = ()
    # Forms we do not process (uniformResourceIdentifier, otherName, ...).
    other_forms: frozenset[str] = frozenset()
    size: int = 0  # entries, of any form


class Extensions(NamedTuple):
    """(Named tuples: built for every certificate, they must be cheap.)"""

    is_ca: bool = False
    basic_constraints_critical: bool = False
    path_length: int | None = None
    # keyUsage bits we look at; None when the extension is absent.
    key_usage: frozenset[str] | None = None
    # extendedKeyUsage as dotted OIDs; None when absent.
    extended_key_usage: frozenset[str] | None = None
    extended_key_usage_critical: bool = False
    subject_alt_name: AltNames | None = None
    subject_alt_name_critical: bool = False
    name_constraints: names.NameConstraints | None = None
    subject_key_identifier: bytes | None = None
    authority_key_identifier: bytes | None = None
    authority_key_identifier_has_issuer: bool = False


NO_ALT_NAMES = AltNames()


def from_cryptography(certificate: x509.Certificate) -> Extensions:
    """Every extension through `cryptography`; its exceptions (malformed
    values, DuplicateExtension) propagate to `parse_certificate`."""
    fields: dict[str, object] = {}
    for extension in certificate.extensions:
        _check_criticality(extension)
        value = extension.value
        kind = type(value)
        if kind is x509.BasicConstraints:
            fields["is_ca"] = value.ca
            fields["basic_constraints_critical"] = extension.critical
            fields["path_length"] = value.path_length
            # RFC 5280 §4.2.1.9: a CA's basicConstraints MUST be critical.
            if value.ca and not extension.critical:
                raise CertificateRefused(
                    Check.basic_constraints, "CA basicConstraints not marked critical"
                )
        elif kind is x509.KeyUsage:
            fields["key_usage"] = frozenset(
                bit
                for bit, on in (
                    ("digital_signature", value.digital_signature),
                    ("key_cert_sign", value.key_cert_sign),
                )
                if on
            )
        elif kind is x509.ExtendedKeyUsage:
            fields["extended_key_usage"] = frozenset(usage.dotted_string for usage in value)
            fields["extended_key_usage_critical"] = extension.critical
        elif kind is x509.SubjectAlternativeName:
            # RFC 5280 §4.2.1.6: "MUST contain at least one entry".
            if not len(value):
                raise CertificateRefused(Check.name, "empty subjectAltName")
            fields["subject_alt_name"] = _alt_names_from(value)
            fields["subject_alt_name_critical"] = extension.critical
        elif kind is x509.NameConstraints:
            fields["name_constraints"] = _name_constraints(value)
        elif kind is x509.SubjectKeyIdentifier:
            fields["subject_key_identifier"] = value.digest
        elif kind is x509.AuthorityKeyIdentifier:
            # RFC 5280 §4.2.1.1: keyIdentifier MUST be present.
            if value.key_identifier is None:
                raise CertificateRefused(
                    Check.extension, "authorityKeyIdentifier without keyIdentifier"
                )
            fields["authority_key_identifier"] = value.key_identifier
            fields["authority_key_identifier_has_issuer"] = (
                value.authority_cert_issuer is not None
                or value.authority_cert_serial_number is not None
            )
        elif kind is x509.PolicyConstraints:
            # We build no policy tree, so cannot honour requireExplicitPolicy.
            raise CertificateRefused(Check.unsupported_extension, "policyConstraints not processed")
    return Extensions(**fields)  # type: ignore[arg-type]


def _check_criticality(extension: x509.Extension[x509.ExtensionType]) -> None:
    """RFC 5280 §4.2: what a conforming CA MUST mark critical or not, and
    "MUST reject the certificate if it encounters a critical extension it
    does not recognize"."""
    oid = extension.oid
    if extension.critical and oid not in _MAY_BE_CRITICAL:
        if oid in _MUST_BE_NON_CRITICAL:
            raise CertificateRefused(Check.extension, f"{oid.dotted_string} marked critical")
        raise CertificateRefused(
            Check.unknown_critical_extension, f"unknown critical extension {oid.dotted_string}"
        )
    name = _MUST_BE_CRITICAL_NAMES.get(oid)
    if name is not None and not extension.critical:
        # nameConstraints: we refuse rather than guess what a non-critical one means.
        check = Check.name_constraints if name == "nameConstraints" else Check.extension
        raise CertificateRefused(check, f"{name} not critical")


def _alt_names_from(value: x509.SubjectAlternativeName) -> AltNames:
    dns: list[str] = []
    ips: list[IPAddressOrNetwork] = []
    emails: list[str] = []
    directories: list[names.NormalizedName] = []
    other: set[str] = set()
    for general_name in value:
        if type(general_name) is x509.DNSName:
            dns.append(general_name.value)
        elif type(general_name) is x509.IPAddress:
            ips.append(general_name.value)
        elif type(general_name) is x509.RFC822Name:
            emails.append(general_name.value)
        elif type(general_name) is x509.DirectoryName:
            directories.append(dname.normalized(dname.from_cryptography(general_name.value)))
        else:
            other.add(type(general_name).__name__)
    return AltNames(
        tuple(dns), tuple(ips), tuple(emails), tuple(directories), frozenset(other), len(value)
    )


def _subtrees(general_names: list[x509.GeneralName] | None) -> names.Subtrees | None:
    if general_names is None:
        return None
    dns: list[str] = []
    ips: list[names.IPNetwork] = []
    emails: list[str] = []
    directories: list[names.NormalizedName] = []
    other: set[str] = set()
    for general_name in general_names:
        if type(general_name) is x509.DNSName:
            value = general_name.value.lower()
            # A subtree is a plain name: no wildcard, no leading period.
            if value and not names.is_dns_name(value, wildcard=False):
                raise CertificateRefused(
                    Check.name_constraints, f"invalid dNSName subtree {value!r}"
                )
            dns.append(value)
        elif type(general_name) is x509.IPAddress:
            network = general_name.value
            if not isinstance(network, ipaddress.IPv4Network | ipaddress.IPv6Network):
                raise CertificateRefused(
                    Check.name_constraints, "iPAddress subtree is not a network"
                )
            ips.append(network)
        elif type(general_name) is x509.RFC822Name:
            value = general_name.value
            host = value[1:] if value.startswith(".") else value
            if not (names.is_email(value) or names.is_dns_name(host.lower(), wildcard=False)):
                raise CertificateRefused(
                    Check.name_constraints, f"invalid rfc822Name subtree {value!r}"
                )
            emails.append(value)
        elif type(general_name) is x509.DirectoryName:
            directories.append(dname.normalized(dname.from_cryptography(general_name.value)))
        else:
            other.add(type(general_name).__name__)
    return names.Subtrees(
        tuple(dns), tuple(ips), tuple(emails), tuple(directories), frozenset(other)
    )


def _name_constraints(value: x509.NameConstraints) -> names.NameConstraints:
    count = len(value.permitted_subtrees or ()) + len(value.excluded_subtrees or ())
    if count > MAX_SUBTREES:
        raise CertificateRefused(Check.name_constraints, f"{count} subtrees (limit {MAX_SUBTREES})")
    permitted = _subtrees(value.permitted_subtrees)
    excluded = _subtrees(value.excluded_subtrees)
    # RFC 5280 §4.2.1.10: "MUST NOT issue ... where name constraints is an
    # empty sequence"; `cryptography` already refuses both absent.
    if permitted is None and excluded is None:
        raise CertificateRefused(Check.name_constraints, "empty nameConstraints")
    return names.NameConstraints(permitted, excluded)
