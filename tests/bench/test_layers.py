"""The appliance profile's split by layer (`pinata bench handshake --profile`)."""

from __future__ import annotations

import pstats
from typing import Any

import pytest

from pinata.bench.handshake import LAYERS, layer_of, layers

ENGINE = ("/x/pinata/tls/record.py", 10, "seal")
ADAPTER = ("/x/pinata/appliance/tls_stream.py", 20, "_pump")
GUARD = ("/x/pinata/appliance/guard.py", 30, "feed")
TRIO = ("/v/site-packages/trio/_core/_run.py", 40, "unrolled_run")
HELPER = ("/usr/lib/python3.11/contextlib.py", 50, "__enter__")
LEN = ("~", 0, "<built-in method builtins.len>")
SIGN = ("~", 0, "<method 'sign' of 'cryptography.hazmat.bindings._rust.openssl.ec.ECPrivateKey'"
        " objects>")


def test_each_layer_is_named_by_where_the_function_lives() -> None:
    assert layer_of(*ENGINE[::2]) == "engine logic"
    assert layer_of(*ADAPTER[::2]) == "adapter (TLSStream)"
    assert layer_of(*GUARD[::2]) == "appliance bookkeeping"
    assert layer_of(*TRIO[::2]) == "trio shell and event loop"
    assert layer_of("/x/pinata/x509/path.py", "search") == "validator"
    assert layer_of(*SIGN[::2]) == "public-key operations"
    assert layer_of(*LEN[::2]) is None and layer_of(*HELPER[::2]) is None


class _Stats(pstats.Stats):
    def __init__(self, table: dict[Any, Any]) -> None:
        self.stats = table


def test_library_time_is_charged_to_its_callers_as_split_by_the_profile() -> None:
    # len: 3 s of its own, 1 s of it under the engine and 2 s under a
    # contextlib helper that trio called (twice removed: still trio's).
    table = {
        ENGINE: (1, 1, 0.5, 4.0, {}),
        TRIO: (1, 1, 0.25, 3.0, {}),
        HELPER: (1, 1, 1.0, 3.0, {TRIO: (1, 1, 1.0, 3.0)}),
        LEN: (2, 2, 3.0, 3.0, {ENGINE: (1, 1, 1.0, 1.0), HELPER: (1, 1, 2.0, 2.0)}),
        SIGN: (1, 1, 0.125, 0.125, {ENGINE: (1, 1, 0.125, 0.125)}),
    }
    spent = layers(_Stats(table), handshakes=1)
    assert set(spent) == set(LAYERS)
    assert spent["engine logic"] == pytest.approx((0.5 + 1.0) * 1e6)
    assert spent["trio shell and event loop"] == pytest.approx((0.25 + 1.0 + 2.0) * 1e6)
    assert spent["public-key operations"] == pytest.approx(0.125 * 1e6)
    assert spent["other"] == 0
    assert sum(spent.values()) == pytest.approx(sum(row[2] for row in table.values()) * 1e6)
