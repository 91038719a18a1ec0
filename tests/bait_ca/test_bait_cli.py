"""`python -m bait_ca`: what each command writes, and each refusal (message,
exit 1, nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from bait_ca import cli, files, toy
from bait_ca.ca import fingerprint
from bait_ca.issued import Issued
from bait_ca.wallet import BitcoinKey

TOY_KEY = str(toy.DIRECTORY / "anchor.key")
TOY_CERT = str(toy.DIRECTORY / "anchor.pem")
ISSUE = ["issue", "--ca-key", TOY_KEY, "--ca-cert", TOY_CERT]
WRONG_KEY = ["issue", "--ca-key", str(toy.DIRECTORY / "server.key"), "--ca-cert", TOY_CERT]
LEAF_AS_CA = [
    *("issue", "--ca-key", str(toy.DIRECTORY / "server.key")),
    *("--ca-cert", str(toy.DIRECTORY / "server.pem")),
]
MISSING_KEY = ["issue", "--ca-key", "/nonexistent/key", "--ca-cert", TOY_CERT]


def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def load_pair(directory: Path, stem: str) -> Issued:
    return Issued.from_pem(
        (directory / f"{stem}.pem").read_bytes(), (directory / f"{stem}.key").read_bytes()
    )


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_ceremony_writes_certificates_and_leaf_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = cli.main(["ceremony", "--out", str(out), "--host", "pinata.example", "--days", "30"])
    assert code == 0
    anchor = x509.load_pem_x509_certificate((out / "anchor.pem").read_bytes())
    assert fingerprint(anchor) in capsys.readouterr().out
    validity = anchor.not_valid_after_utc - anchor.not_valid_before_utc
    assert validity.days == 30
    for role in ("server", "client", "web"):
        pair = Issued.from_pem(
            (out / f"{role}.pem").read_bytes(), (out / f"{role}.key").read_bytes()
        )
        pair.certificate.verify_directly_issued_by(anchor)
        assert mode(out / f"{role}.key") == 0o600
        assert mode(out / f"{role}.pem") == 0o644


def test_ceremony_into_an_existing_empty_directory(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    assert cli.main(["ceremony", "--out", str(out)]) == 0
    assert (out / "anchor.pem").exists()


def test_ceremony_explicit_dates(tmp_path: Path) -> None:
    out = tmp_path / "out"
    args = ["--not-before", "2030-01-01", "--not-after", "2031-06-01T12:00:00"]
    assert cli.main(["ceremony", "--out", str(out), *args]) == 0
    anchor = x509.load_pem_x509_certificate((out / "anchor.pem").read_bytes())
    assert anchor.not_valid_before_utc.isoformat() == "2030-01-01T00:00:00+00:00"
    assert anchor.not_valid_after_utc.isoformat() == "2031-06-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["ceremony", "--host", "under_score"], "not a valid DNS name"),
        (["ceremony", "--host", "999.1.1.1"], "not a valid DNS name"),
        (
            ["ceremony", "--not-before", "2030-01-01", "--not-after", "2029-01-01"],
            "validity inverted",
        ),
        (["ceremony", "--days", "0"], "positive"),
        (
            [*WRONG_KEY, "--role", "client", "--name", "me.example"],
            "does not match",
        ),
        (
            [*ISSUE, "--role", "client", "--name", "not a name"],
            "not a valid DNS name",
        ),
        (
            [*ISSUE, "--role", "server", "--name", "x.example", "--days", "-3"],
            "positive",
        ),
        (
            [*LEAF_AS_CA, "--role", "client", "--name", "a.b"],
            "not a CA certificate",
        ),
        (
            [*MISSING_KEY, "--role", "server", "--name", "x.example"],
            "cannot read",
        ),
    ],
)
def test_refusals_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    out = tmp_path / "out"
    code = cli.main([*argv, "--out", str(out)])
    assert code == 1
    err = capsys.readouterr().err
    assert "refused" in err and message in err
    assert listing(tmp_path) == []


@pytest.mark.parametrize("command", ["ceremony", "toy", "issue"])
def test_non_empty_output_directory_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "precious").write_bytes(b"keep me")
    argv = [*ISSUE, "--role", "client", "--name", "a.b"] if command == "issue" else [command]
    assert cli.main([*argv, "--out", str(out)]) == 1
    assert "not an empty directory" in capsys.readouterr().err
    assert listing(tmp_path) == ["out", "out/precious"]
    assert (out / "precious").read_bytes() == b"keep me"


def test_output_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_bytes(b"x")
    assert cli.main(["toy", "--out", str(target)]) == 1
    assert target.read_bytes() == b"x"


@pytest.mark.parametrize("role", ["client", "server"])
def test_issue_under_the_toy_ca(tmp_path: Path, role: str) -> None:
    out = tmp_path / "mine"
    name = "researcher.example" if role == "server" else "192.0.2.7"
    argv = [*ISSUE, "--role", role, "--name", name]
    assert cli.main([*argv, "--out", str(out)]) == 0
    pair = load_pair(out, role)
    pair.certificate.verify_directly_issued_by(toy.load().anchor.certificate)
    assert mode(out / f"{role}.key") == 0o600
    eku = pair.certificate.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    wanted = (
        ExtendedKeyUsageOID.SERVER_AUTH if role == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
    )
    assert isinstance(eku, x509.ExtendedKeyUsage) and list(eku) == [wanted]
    san = pair.certificate.extensions.get_extension_for_oid(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME
    ).value
    assert isinstance(san, x509.SubjectAlternativeName)
    values = [str(v) for v in san.get_values_for_type(x509.DNSName)]
    values += [str(v) for v in san.get_values_for_type(x509.IPAddress)]
    assert values == [name]


@pytest.mark.parametrize(
    ("key_type", "kind"),
    [
        ("p384", ec.EllipticCurvePrivateKey),
        ("ed25519", ed25519.Ed25519PrivateKey),
        ("rsa2048", rsa.RSAPrivateKey),
    ],
)
def test_issue_key_types(tmp_path: Path, key_type: str, kind: type) -> None:
    out = tmp_path / "mine"
    argv = [*ISSUE, "--role", "client", "--name", "a.example", "--key-type", key_type]
    assert cli.main([*argv, "--out", str(out)]) == 0
    pair = load_pair(out, "client")
    pair.certificate.verify_directly_issued_by(toy.load().anchor.certificate)
    assert isinstance(pair.private_key, kind)


def test_wallet(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "secret.wif"
    assert cli.main(["wallet", "--out", str(out)]) == 0
    assert mode(out) == 0o600
    key = BitcoinKey.from_wif(out.read_text("ascii"))
    printed = capsys.readouterr().out
    assert key.p2pkh_address in printed and key.p2wpkh_address in printed
    assert key.wif not in printed  # the secret goes to the file only
    assert not key.testnet
    assert listing(tmp_path) == ["secret.wif"]


def test_wallet_testnet_and_refusal(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "secret.wif"
    assert cli.main(["wallet", "--out", str(out), "--testnet"]) == 0
    before = out.read_bytes()
    assert BitcoinKey.from_wif(before.decode()).testnet
    assert cli.main(["wallet", "--out", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert out.read_bytes() == before
    assert listing(tmp_path) == ["secret.wif"]
    assert cli.main(["wallet", "--out", str(tmp_path / "missing" / "x.wif")]) == 1


def test_a_failure_halfway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = files._write
    calls = 0

    def failing_write(path: Path, data: bytes, mode: int) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("disk full")
        real_write(path, data, mode)

    monkeypatch.setattr(files, "_write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        cli.main(["toy", "--out", str(tmp_path / "toy")])
    assert listing(tmp_path) == []


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["issue", "--role", "admin"])
    assert exited.value.code == 2
    with pytest.raises(SystemExit) as exited:
        cli.main(["ceremony", "--out", "x", "--key-type", "rsa1024"])
    assert exited.value.code == 2
