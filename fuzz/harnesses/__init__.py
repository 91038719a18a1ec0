"""The harnesses, by name. Each module has `one_input(data: bytes) -> None`."""

from __future__ import annotations

# name: (module, what it targets)
HARNESSES: dict[str, tuple[str, str]] = {
    "record": ("fuzz.harnesses.record", "record layer: deframer, AEAD open/seal (RFC 8446 §5)"),
    "decoders": (
        "fuzz.harnesses.decoders",
        "handshake message and extension codecs, key shares, signature checks",
    ),
    "server_raw": ("fuzz.harnesses.server_raw", "ServerConnection fed arbitrary byte streams"),
    "server_structured": (
        "fuzz.harnesses.server_structured",
        "ServerConnection against a mutating client (fields, lengths, extension lists)",
    ),
    "client_raw": ("fuzz.harnesses.client_raw", "ClientConnection fed arbitrary server flights"),
    "client_structured": (
        "fuzz.harnesses.client_structured",
        "ClientConnection against a mutating server",
    ),
    "x509": ("fuzz.harnesses.x509", "X.509 validator: DER bags and mutated chains, toy anchor"),
    "x509_differential": (
        "fuzz.harnesses.x509_differential",
        "our validator against pyca/cryptography's verifier on mutated chains",
    ),
    "http": ("fuzz.harnesses.http", "the web page's HTTP request handling (h11 + routing)"),
    "proxy_protocol": (
        "fuzz.harnesses.proxy_protocol",
        "PROXY protocol v1/v2 headers: the parser, and the appliance reading them in segments",
    ),
}
