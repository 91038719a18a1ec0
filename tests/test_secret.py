"""The secret's type never shows its value."""

from __future__ import annotations

import json
import logging
import pickle

import pytest

from pinata.secret import Secret


def test_repr_str_format_never_show_the_value() -> None:
    secret = Secret(b"cQx7-the-toy-wif")
    for text in (repr(secret), str(secret), f"{secret}", f"{secret!r}", "%s" % secret):  # noqa: UP031 - the old way must not leak either
        assert "cQx7" not in text
    assert "cQx7" not in repr([secret, {"k": secret}])


def test_no_implicit_conversion_or_pickling() -> None:
    secret = Secret(b"value")
    with pytest.raises(TypeError):
        bytes(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps(secret)


def test_logging_and_exceptions_do_not_leak(caplog: pytest.LogCaptureFixture) -> None:
    secret = Secret(b"leak-me-not")
    with caplog.at_level(logging.INFO):
        logging.getLogger("t").info("secret is %s %r", secret, secret)
    assert "leak-me-not" not in caplog.text
    error = ValueError(secret)
    assert "leak-me-not" not in str(error) and "leak-me-not" not in repr(error)


def test_occurs_in_and_reveal() -> None:
    secret = Secret(b"needle")
    assert secret.occurs_in(b"hay needle hay") and not secret.occurs_in(b"hay")
    assert secret.reveal_for_verified_peer() == b"needle"
    assert len(secret) == 6
    assert secret == secret and secret != Secret(b"needle")


def test_only_bytes() -> None:
    with pytest.raises(TypeError):
        Secret("text")  # type: ignore[arg-type]
