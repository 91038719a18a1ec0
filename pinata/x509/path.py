"""Bounded path building (RFC 4158 in miniature).

From the leaf upward, depth first: an issuer candidate is the anchor or a
certificate from the peer's bag whose subject equals the child's issuer
(RFC 5280 §7.1 comparison); authority/subject key identifiers only order
the candidates (RFC 4158 §3.5.12), never exclude one. Each candidate gets
the §6.1 checks for its position before its signature over the child is
verified, and every candidate is tried until one path reaches the anchor.

Bounded three ways, so a hostile bag cannot make it spin:
- depth: at most `max_depth` intermediates (and never above HARD_MAX_DEPTH);
- candidates: only the first MAX_BAG certificates after the leaf are looked
  at (a compliant peer sends its chain in order, RFC 8446 §4.4.2);
- work: at most MAX_SIGNATURE_WORK units of signature verification (each
  costed by its key, `signature.verification_cost` (reckoned at parse): one RSA-2048
  verification is 1, a P-384 one 25), each pair verified once, and at most
  MAX_STEPS candidates considered, per validation.
`max_depth` counts every intermediate, self-issued or not: it bounds work
(each costs a verification), where pathLenConstraint (§6.1.4 (l)) carries
RFC 5280's meaning and exempts self-issued certificates.
Cycles are impossible: a (subject, key) pair may appear once in a path, and
the anchor's pair only as the anchor (RFC 4158 §5.2 loop detection).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from pinata.x509 import checks
from pinata.x509.errors import CertificateRefused, Check, ValidationFailure, alert_for
from pinata.x509.names import NormalizedName
from pinata.x509.parse import ParseCache, ParsedCertificate
from pinata.x509.signature import verify

HARD_MAX_DEPTH = 16
MAX_BAG = 64
# About 5 ms of CPU here: 256 RSA-2048, 64 P-256 or 10 P-384 verifications.
MAX_SIGNATURE_WORK = 256
MAX_STEPS = 512

ANCHOR = -1  # the anchor's id in a path; other ids are indices in the peer's list


class _Exhausted(Exception):
    pass


@dataclass
class PathSearch:
    """State of one validation's search; created and dropped inside `validate`."""

    anchor: ParsedCertificate
    cache: ParseCache
    bag: dict[int, bytes]
    now: datetime
    purpose: checks.Purpose
    max_depth: int
    parsed: dict[int, ParsedCertificate] = field(default_factory=dict)
    by_subject: dict[NormalizedName, list[int]] | None = None
    verified: dict[tuple[int, int], bool] = field(default_factory=dict)
    work: int = 0
    steps: int = 0
    best: tuple[int, ValidationFailure] | None = None

    def find(self, leaf: ParsedCertificate) -> list[int] | ValidationFailure:
        try:
            found = self._extend([0], [leaf])
        except _Exhausted as exhausted:
            return _failure(Check.budget, None, str(exhausted))
        if found is not None:
            return found
        if self.best is not None:
            return self.best[1]
        return _failure(Check.no_path, None, "no issuer of the chain is, or leads to, the anchor")

    def _record(self, rank: int, failure: ValidationFailure) -> None:
        if self.best is None or rank > self.best[0]:
            self.best = (rank, failure)

    def _index(self) -> dict[NormalizedName, list[int]]:
        # Only when the anchor alone did not do (the common case never gets
        # here), each bag certificate's subject is read, which is a tenth of
        # a full parse: only those whose subject some child names as its
        # issuer are parsed and profile-checked (`_candidates`).
        if self.by_subject is None:
            self.by_subject = {}
            for index, der in self.bag.items():
                subject = self.cache.subject(der)
                if subject is not None:  # junk in the bag is ignored, not fatal
                    self.by_subject.setdefault(subject, []).append(index)
        return self.by_subject

    def _candidates(self, child: ParsedCertificate, rank: int) -> Iterator[int]:
        # The anchor first, and the bag only if the anchor did not do: a
        # leaf issued by the anchor costs one parse and one verification.
        if child.issued_by(self.anchor):
            yield ANCHOR
        if not self.bag:
            return
        matches = []
        for index in self._index().get(child.issuer, []):
            if index not in self.parsed:
                try:
                    self.parsed[index] = self.cache.parse(self.bag[index])
                except CertificateRefused as refused:
                    # A refused would-be issuer explains a missing path.
                    self._record(rank, refused.failure(index))
                    continue
            matches.append(index)
        hint = child.authority_key_identifier
        # Stable sort: key-identifier matches first, else the peer's order.
        yield from sorted(
            matches,
            key=lambda i: hint is None or self.parsed[i].subject_key_identifier != hint,
        )

    def _extend(self, ids: list[int], path: list[ParsedCertificate]) -> list[int] | None:
        child = path[-1]
        in_path: set[tuple[NormalizedName, bytes]] | None = None
        for candidate in self._candidates(child, len(ids) + 1):
            self.steps += 1
            if self.steps > MAX_STEPS:
                raise _Exhausted(f"more than {MAX_STEPS} candidate issuers considered")
            rank = len(ids)
            if candidate == ANCHOR:
                issuer = self.anchor
            else:
                issuer = self.parsed[candidate]
                if in_path is None:  # not needed when the anchor issued the child
                    in_path = {(c.subject, c.spki) for c in (*path, self.anchor)}
                if (issuer.subject, issuer.spki) in in_path:
                    continue
                if len(ids) > self.max_depth:
                    self._record(
                        rank,
                        _failure(
                            Check.max_depth, candidate, f"more than {self.max_depth} intermediates"
                        ),
                    )
                    continue
            index = None if candidate == ANCHOR else candidate
            try:
                if candidate != ANCHOR:
                    checks.check_issuer(issuer, is_anchor=False)
                checks.check_validity(issuer, self.now)
                checks.check_extended_key_usage(issuer, self.purpose, is_leaf=False)
                checks.check_path_length(issuer, path)
                checks.check_name_constraints(issuer, path)
            except CertificateRefused as refused:
                self._record(rank + 1, refused.failure(index))
                continue
            if not self._verify(ids[-1], child, candidate, issuer):
                self._record(
                    rank,
                    _failure(
                        Check.signature,
                        ids[-1],
                        "signature does not verify with the "
                        + ("anchor's key" if candidate == ANCHOR else "issuer's key"),
                    ),
                )
                continue
            if candidate == ANCHOR:
                return [*ids, ANCHOR]
            found = self._extend([*ids, candidate], [*path, issuer])
            if found is not None:
                return found
        return None

    def _verify(
        self, child_id: int, child: ParsedCertificate, issuer_id: int, issuer: ParsedCertificate
    ) -> bool:
        key = (child_id, issuer_id)
        cached = self.verified.get(key)
        if cached is not None:
            return cached
        self.work += issuer.verification_cost
        if self.work > MAX_SIGNATURE_WORK:
            raise _Exhausted(f"signature verification beyond {MAX_SIGNATURE_WORK} units of work")
        result = verify(
            issuer.public_key, issuer.key_is_rsassa_pss, child.algorithm, child.signature, child.tbs
        )
        self.verified[key] = result
        return result


def _failure(check: Check, index: int | None, reason: str) -> ValidationFailure:
    return ValidationFailure(check, index, reason, alert_for(check))


def bag_of(certificates: Sequence[bytes], anchor_der: bytes) -> dict[int, bytes]:
    """The certificates after the leaf worth looking at, by their index in
    the peer's list: the first MAX_BAG, without duplicates or the anchor."""
    bag: dict[int, bytes] = {}
    seen = {anchor_der, certificates[0]}
    for index in range(1, min(len(certificates), MAX_BAG + 1)):
        der = bytes(certificates[index])
        if der not in seen:
            seen.add(der)
            bag[index] = der
    return bag
