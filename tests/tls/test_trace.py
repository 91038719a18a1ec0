"""The trace keeps its entries in one flat list and an entry's details in
one flat tuple (bytes held per stalled handshake, issue 18); what it gives
back is unchanged."""

from __future__ import annotations

from pinata.tls.trace import MAX_TRACE_ENTRIES, Trace, TraceEntry


def test_details_come_back_as_pairs_in_the_order_given() -> None:
    entry = TraceEntry.of("out", "ServerHello", {"version": "TLS1.3", "group": "x25519",
                                                 "suites": ("a", "b")})
    assert entry.flat == ("version", "TLS1.3", "group", "x25519", "suites", ("a", "b"))
    assert entry.details == (("version", "TLS1.3"), ("group", "x25519"), ("suites", ("a", "b")))
    assert entry.to_json() == {"kind": "out", "what": "ServerHello", "version": "TLS1.3",
                               "group": "x25519", "suites": ["a", "b"]}


def test_an_entry_without_details_holds_the_empty_tuple() -> None:
    entry = TraceEntry.of("in", "Finished", {})
    assert entry.flat == () and entry.details == ()
    assert entry.to_json() == {"kind": "in", "what": "Finished"}


def test_the_trace_gives_back_the_entries_it_was_given_and_counts_what_it_drops() -> None:
    trace = Trace()
    first = TraceEntry.of("in", "ClientHello", {"retry": 1, "suites": ("a",)})
    trace.append(first)
    trace.add("state", "ServerExpectCertificate")
    assert trace.entries == (first, TraceEntry("state", "ServerExpectCertificate"))
    for _ in range(MAX_TRACE_ENTRIES + 1):
        trace.add("in", "KeyUpdate", request_update=0)
    assert len(trace.entries) == MAX_TRACE_ENTRIES
    assert trace.to_json()[-1] == {"kind": "note", "what": "trace_truncated", "dropped": 3}


def test_enum_names_names_each_code_point_as_enum_name_does() -> None:
    from pinata.tls.constants import CipherSuite, ExtensionType, enum_name, enum_names

    suites = [0x1301, 0x1303, 0xC02B, 0x0A0A, 0xFFFF]
    assert enum_names(CipherSuite, suites) == tuple(enum_name(CipherSuite, s) for s in suites)
    assert enum_names(CipherSuite, suites)[0] == "TLS_AES_128_GCM_SHA256"
    assert enum_names(CipherSuite, suites)[3] == "0x0a0a"
    assert enum_names(ExtensionType, []) == ()
    assert enum_names(ExtensionType, [0, 43]) == ("server_name", "supported_versions")


def test_packed_code_points_are_named_by_their_key_when_read() -> None:
    from pinata.tls.trace import code_points

    suites = code_points([0x1301, 0xC02B, 0x0A0A])
    assert suites == b"\x13\x01\xc0\x2b\x0a\x0a"
    entry = TraceEntry("in", "ClientHello", ("cipher_suites", suites,
                                             "extensions", code_points([0, 43]),
                                             "other", code_points([1])))
    assert entry.details == (
        ("cipher_suites", ("TLS_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                           "0x0a0a")),
        ("extensions", ("server_name", "supported_versions")),
        ("other", ("0x0001",)),  # a key with no registry: hex
    )
    assert entry.to_json()["extensions"] == ["server_name", "supported_versions"]


def test_a_stalled_server_trace_holds_packed_hello_lists_and_shared_flight_notes() -> None:
    from tests.tls.pairs import client_config, new_pair, server_config

    config = server_config()
    traces = []
    for _ in range(2):
        client, server = new_pair(config, client_config())
        server.receive_data(bytearray(client.data_to_send()))
        server.data_to_send()
        traces.append({e.what: e for e in server.trace.entries})
    first, second = traces
    hello = first["ClientHello"]
    # Held as the wire's two-byte code points, named only when read.
    assert all(isinstance(v, bytes) for v in hello.flat[1::2])
    assert "TLS_AES_128_GCM_SHA256" in dict(hello.details)["cipher_suites"]
    # Our flight's notes are the ones built at import: two connections share them.
    for what in ("ServerHello", "Certificate", "CertificateVerify"):
        assert first[what].flat and first[what].flat is second[what].flat, what
