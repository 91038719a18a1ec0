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
