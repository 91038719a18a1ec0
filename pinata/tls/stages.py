"""Each direction of a connection is in one key stage at a time (RFC 8446 §5,
§7.3): in the clear, under handshake traffic keys, under application
traffic keys, or closed. A stage owns its key and sequence number (inside
its `RecordProtector` or `RecordUnprotector`, which makes the AEAD object
at the first record under the key, so a handshake waiting for its peer
holds key bytes, not cipher contexts) and only what the next step needs:
no traffic secret is kept here (the application traffic secrets, for the
next KeyUpdate (§7.2), are the Established state's; a handshake traffic
secret is never kept once its keys exist).

Stages are immutable (named tuples: cheap to build on the per-record path,
and a change of stage is a new value), so no two flags can disagree about
which keys are in use. Compare stages with isinstance, never with ==. Skipping rejected early data
(§4.2.10) is a stage of its own, wrapping the one it will fall back to.
"""

from __future__ import annotations

from typing import NamedTuple

from pinata.tls.record import (
    RecordProtector,
    RecordProtector12,
    RecordUnprotector,
    RecordUnprotector12,
)

# ---- what we read --------------------------------------------------------


class ReadPlaintext(NamedTuple):
    """No keys yet: records arrive in the clear (§5.1). `ccs_seen`: the one
    middlebox-compatibility change_cipher_spec (§5) has arrived. `warnings`:
    user_canceled warning alerts so far in the handshake (bounded as the
    Established state bounds them after it)."""

    ccs_seen: bool = False
    warnings: int = 0


class ReadHandshake(NamedTuple):
    """The peer's handshake traffic keys. Until a record opens under them
    (`opened`), the peer may not have them yet, so a plaintext alert is
    still its own to send (it may have refused our ServerHello)."""

    unprotector: RecordUnprotector
    opened: bool = False
    ccs_seen: bool = False
    warnings: int = 0


class ReadTraffic(NamedTuple):
    """The peer's application traffic keys. The secret that derives the next
    ones is the Established state's (`pinata.tls.established`). In TLS 1.2,
    the keys from the peer's ChangeCipherSpec on: its Finished, then data."""

    unprotector: RecordUnprotector | RecordUnprotector12
    # Warning alerts between a TLS 1.2 peer's ChangeCipherSpec and its
    # Finished (once Established, the Established state counts them).
    warnings: int = 0


class ReadAwaitingChangeCipherSpec(NamedTuple):
    """TLS 1.2: the peer's keys are known (from the key block) but records
    stay in the clear until its ChangeCipherSpec (RFC 5246 §7.1), which
    moves to `ReadTraffic` with `unprotector`."""

    unprotector: RecordUnprotector12
    warnings: int = 0


class ReadSkippingEarlyData(NamedTuple):
    """We declined the client's 0-RTT (§4.2.10): records that do not open
    are skipped while `budget` bytes last. The first record that opens, or
    the next handshake message, ends it and leaves `resume`."""

    resume: ReadPlaintext | ReadHandshake
    budget: int


class ReadClosed(NamedTuple):
    """Nothing more is read: the peer closed, or the connection failed."""


ReadStage = (
    ReadPlaintext
    | ReadHandshake
    | ReadTraffic
    | ReadAwaitingChangeCipherSpec
    | ReadSkippingEarlyData
    | ReadClosed
)


# ---- what we write -------------------------------------------------------


class WritePlaintext(NamedTuple):
    """No keys yet. `first_flight`: nothing sent so far, so a client's first
    ClientHello may carry record version 0x0301 (§5.1)."""

    first_flight: bool = True


class WriteHandshake(NamedTuple):
    """Our handshake traffic keys."""

    protector: RecordProtector


class WriteTraffic(NamedTuple):
    """Our application traffic keys (the secret is the Established state's);
    in TLS 1.2, the keys from our ChangeCipherSpec on."""

    protector: RecordProtector | RecordProtector12


class WriteClosed(NamedTuple):
    """Nothing more is written: we sent close_notify, or a fatal alert."""


WriteStage = WritePlaintext | WriteHandshake | WriteTraffic | WriteClosed


def ccs_seen(stage: ReadStage) -> bool:
    """Whether the compatibility change_cipher_spec arrived in this stage or
    the one it resumes."""
    if isinstance(stage, ReadSkippingEarlyData):
        stage = stage.resume
    return isinstance(stage, ReadPlaintext | ReadHandshake) and stage.ccs_seen


__all__ = [
    "ReadAwaitingChangeCipherSpec",
    "ReadClosed",
    "ReadHandshake",
    "ReadPlaintext",
    "ReadSkippingEarlyData",
    "ReadStage",
    "ReadTraffic",
    "WriteClosed",
    "WriteHandshake",
    "WritePlaintext",
    "WriteStage",
    "WriteTraffic",
    "ccs_seen",
]
