"""RFC 8448 §3 (Simple 1-RTT Handshake), byte for byte: key exchange, every
key schedule secret, traffic keys and IVs, Finished, and record protection.

The hex constants are the RFC's values (facts); each test recomputes them
from the trace's inputs only (private keys and handshake messages).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from pinata.tls.constants import CipherSuite, ContentType, NamedGroup, SignatureScheme
from pinata.tls.errors import AlertDescription, ProtocolError
from pinata.tls.key_exchange import ClientKeyShare, server_key_exchange
from pinata.tls.keyschedule import KeySchedule, hkdf_extract
from pinata.tls.record import RecordDeframer, RecordProtector, RecordUnprotector
from pinata.tls.signatures import certificate_verify_message, verify
from pinata.tls.suites import lookup_suite
from pinata.tls.transcript import Transcript


def h(text: str) -> bytes:
    return bytes.fromhex(text)


PARAMS = lookup_suite(CipherSuite.TLS_AES_128_GCM_SHA256)
assert PARAMS is not None

# {client} create an ephemeral x25519 key pair
CLIENT_PRIVATE = h("49af42ba7f7994852d713ef2784bcbcaa7911de26adc5642cb634540e7ea5005")
CLIENT_PUBLIC = h("99381de560e4bd43d23d8e435a7dbafeb3c06e51c13cae4d5413691e529aaf2c")
# {server} create an ephemeral x25519 key pair
SERVER_PRIVATE = h("b1580eeadf6dd589b8ef4f2d5652578cc810e9980191ec8d058308cea216a21e")
SERVER_PUBLIC = h("c9828876112095fe66762bdbf7c672e156d6cc253b833df1dd69b1b04e751f0f")

CLIENT_HELLO = h(
    "01 00 00 c0 03 03 cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12"
    "ec 18 a2 ef 62 83 02 4d ec e7 00 00 06 13 01 13 03 13 02 01 00 00 91 00 00 00 0b 00 09"
    "00 00 06 73 65 72 76 65 72 ff 01 00 01 00 00 0a 00 14 00 12 00 1d 00 17 00 18 00 19 01"
    "00 01 01 01 02 01 03 01 04 00 23 00 00 00 33 00 26 00 24 00 1d 00 20 99 38 1d e5 60 e4"
    "bd 43 d2 3d 8e 43 5a 7d ba fe b3 c0 6e 51 c1 3c ae 4d 54 13 69 1e 52 9a af 2c 00 2b 00"
    "03 02 03 04 00 0d 00 20 00 1e 04 03 05 03 06 03 02 03 08 04 08 05 08 06 04 01 05 01 06"
    "01 02 01 04 02 05 02 06 02 02 02 00 2d 00 02 01 01 00 1c 00 02 40 01"
)
SERVER_HELLO = h(
    "02 00 00 56 03 03 a6"
    "af 06 a4 12 18 60 dc 5e 6e 60 24 9c d3 4c 95 93 0c 8a c5 cb 14"
    "34 da c1 55 77 2e d3 e2 69 28 00 13 01 00 00 2e 00 33 00 24 00"
    "1d 00 20 c9 82 88 76 11 20 95 fe 66 76 2b db f7 c6 72 e1 56 d6"
    "cc 25 3b 83 3d f1 dd 69 b1 b0 4e 75 1f 0f 00 2b 00 02 03 04"
)
ENCRYPTED_EXTENSIONS = h(
    "08 00 00 24 00 22 00 0a 00 14 00"
    "12 00 1d 00 17 00 18 00 19 01 00 01 01 01 02 01 03 01 04 00 1c"
    "00 02 40 01 00 00 00 00"
)
CERTIFICATE = h(
    "0b 00 01 b9 00 00 01 b5 00 01 b0 30 82"
    "01 ac 30 82 01 15 a0 03 02 01 02 02 01 02 30 0d 06 09 2a 86 48"
    "86 f7 0d 01 01 0b 05 00 30 0e 31 0c 30 0a 06 03 55 04 03 13 03"
    "72 73 61 30 1e 17 0d 31 36 30 37 33 30 30 31 32 33 35 39 5a 17"
    "0d 32 36 30 37 33 30 30 31 32 33 35 39 5a 30 0e 31 0c 30 0a 06"
    "03 55 04 03 13 03 72 73 61 30 81 9f 30 0d 06 09 2a 86 48 86 f7"
    "0d 01 01 01 05 00 03 81 8d 00 30 81 89 02 81 81 00 b4 bb 49 8f"
    "82 79 30 3d 98 08 36 39 9b 36 c6 98 8c 0c 68 de 55 e1 bd b8 26"
    "d3 90 1a 24 61 ea fd 2d e4 9a 91 d0 15 ab bc 9a 95 13 7a ce 6c"
    "1a f1 9e aa 6a f9 8c 7c ed 43 12 09 98 e1 87 a8 0e e0 cc b0 52"
    "4b 1b 01 8c 3e 0b 63 26 4d 44 9a 6d 38 e2 2a 5f da 43 08 46 74"
    "80 30 53 0e f0 46 1c 8c a9 d9 ef bf ae 8e a6 d1 d0 3e 2b d1 93"
    "ef f0 ab 9a 80 02 c4 74 28 a6 d3 5a 8d 88 d7 9f 7f 1e 3f 02 03"
    "01 00 01 a3 1a 30 18 30 09 06 03 55 1d 13 04 02 30 00 30 0b 06"
    "03 55 1d 0f 04 04 03 02 05 a0 30 0d 06 09 2a 86 48 86 f7 0d 01"
    "01 0b 05 00 03 81 81 00 85 aa d2 a0 e5 b9 27 6b 90 8c 65 f7 3a"
    "72 67 17 06 18 a5 4c 5f 8a 7b 33 7d 2d f7 a5 94 36 54 17 f2 ea"
    "e8 f8 a5 8c 8f 81 72 f9 31 9c f3 6b 7f d6 c5 5b 80 f2 1a 03 01"
    "51 56 72 60 96 fd 33 5e 5e 67 f2 db f1 02 70 2e 60 8c ca e6 be"
    "c1 fc 63 a4 2a 99 be 5c 3e b7 10 7c 3c 54 e9 b9 eb 2b d5 20 3b"
    "1c 3b 84 e0 a8 b2 f7 59 40 9b a3 ea c9 d9 1d 40 2d cc 0c c8 f8"
    "96 12 29 ac 91 87 b4 2b 4d e1 00 00"
)
CERTIFICATE_VERIFY = h(
    "0f 00 00 84 08 04 00 80 5a 74 7c"
    "5d 88 fa 9b d2 e5 5a b0 85 a6 10 15 b7 21 1f 82 4c d4 84 14 5a"
    "b3 ff 52 f1 fd a8 47 7b 0b 7a bc 90 db 78 e2 d3 3a 5c 14 1a 07"
    "86 53 fa 6b ef 78 0c 5e a2 48 ee aa a7 85 c4 f3 94 ca b6 d3 0b"
    "be 8d 48 59 ee 51 1f 60 29 57 b1 54 11 ac 02 76 71 45 9e 46 44"
    "5c 9e a5 8c 18 1e 81 8e 95 b8 c3 fb 0b f3 27 84 09 d3 be 15 2a"
    "3d a5 04 3e 06 3d da 65 cd f5 ae a2 0d 53 df ac d4 2f 74 f3"
)
SERVER_FINISHED = h("140000209b9b141d906337fbd2cbdce71df4deda4ab42c309572cb7fffee5454b78f0718")
CLIENT_FINISHED = h("14000020a8ec436d677634ae525ac1fcebe11a039ec17694fac6e98527b642f2edd5ce61")

SHARED_SECRET = h("8bd4054fb55b9d63fdfbacf9f04b9f0d35e6d63f537563efd46272900f89492d")
EARLY_SECRET = h("33ad0a1c607ec03b09e6cd9893680ce210adf300aa1f2660e1b22e10f170f92a")
DERIVED_FOR_HANDSHAKE = h("6f2615a108c702c5678f54fc9dbab69716c076189c48250cebeac3576c3611ba")
HANDSHAKE_SECRET = h("1dc826e93606aa6fdc0aadc12f741b01046aa6b99f691ed221a9f0ca043fbeac")
HELLO_HASH = h("860c06edc07858ee8e78f0e7428c58edd6b43f2ca3e6e95f02ed063cf0e1cad8")
C_HS_TRAFFIC = h("b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21")
S_HS_TRAFFIC = h("b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38")
DERIVED_FOR_MASTER = h("43de77e0c77713859a944db9db2590b53190a65b3ee2e4f12dd7a0bb7ce254b4")
MASTER_SECRET = h("18df06843d13a08bf2a449844c5f8a478001bc4d4c627984d5a41da8d0402919")
CERTIFICATE_HASH = h("764d6632b3c35c3f3205e3499ac3edbaabb88295fba751461d3678e2e5ea0687")
CERTIFICATE_VERIFY_HASH = h("edb7725fa7a3473b031ec8ef65a2485493900138a2b91291407d7951a06110ed")
SERVER_FINISHED_HASH = h("9608102a0f1ccc6db6250b7b7e417b1a000eaada3daae4777a7686c9ff83df13")
C_AP_TRAFFIC = h("9e40646ce79a7f9dc05af8889bce6552875afa0b06df0087f792ebb7c17504a5")
S_AP_TRAFFIC = h("a11af9f05531f856ad47116b45a950328204b4f44bfb6b3a4b4f1f3fcb631643")
EXPORTER_MASTER = h("fe22f881176eda18eb8f44529e6792c50c9a3f89452f68d8ae311b4309d3cf50")

S_HS_KEY, S_HS_IV = h("3fce516009c21727d0f2e4e86ee403bc"), h("5d313eb2671276ee13000b30")
C_HS_KEY, C_HS_IV = h("dbfaa693d1762c5b666af5d950258d01"), h("5bd3c71b836e0b76bb73265f")
S_AP_KEY, S_AP_IV = h("9f02283b6c9c07efc26bb9f2ac92e356"), h("cf782b88dd83549aadf1e984")
C_AP_KEY, C_AP_IV = h("17422dda596ed5d9acd890e3c63f5051"), h("5b78923dee08579033e523d9")
S_FINISHED_KEY = h("008d3b66f816ea559f96b537e885c31fc068bf492c652f01f288a1d8cdc19fc8")
C_FINISHED_KEY = h("b80ad01015fb2f0bd65ff7d4da5d6bf83f84821d1f87fdc7d3c75b5a7b42d9c4")

# {server} send handshake record: the protected server flight (EE..Finished).
SERVER_FLIGHT_RECORD = h(
    "17 03 03 02 a2 d1 ff 33 4a 56 f5 bf"
    "f6 59 4a 07 cc 87 b5 80 23 3f 50 0f 45 e4 89 e7 f3 3a f3 5e df"
    "78 69 fc f4 0a a4 0a a2 b8 ea 73 f8 48 a7 ca 07 61 2e f9 f9 45"
    "cb 96 0b 40 68 90 51 23 ea 78 b1 11 b4 29 ba 91 91 cd 05 d2 a3"
    "89 28 0f 52 61 34 aa dc 7f c7 8c 4b 72 9d f8 28 b5 ec f7 b1 3b"
    "d9 ae fb 0e 57 f2 71 58 5b 8e a9 bb 35 5c 7c 79 02 07 16 cf b9"
    "b1 18 3e f3 ab 20 e3 7d 57 a6 b9 d7 47 76 09 ae e6 e1 22 a4 cf"
    "51 42 73 25 25 0c 7d 0e 50 92 89 44 4c 9b 3a 64 8f 1d 71 03 5d"
    "2e d6 5b 0e 3c dd 0c ba e8 bf 2d 0b 22 78 12 cb b3 60 98 72 55"
    "cc 74 41 10 c4 53 ba a4 fc d6 10 92 8d 80 98 10 e4 b7 ed 1a 8f"
    "d9 91 f0 6a a6 24 82 04 79 7e 36 a6 a7 3b 70 a2 55 9c 09 ea d6"
    "86 94 5b a2 46 ab 66 e5 ed d8 04 4b 4c 6d e3 fc f2 a8 94 41 ac"
    "66 27 2f d8 fb 33 0e f8 19 05 79 b3 68 45 96 c9 60 bd 59 6e ea"
    "52 0a 56 a8 d6 50 f5 63 aa d2 74 09 96 0d ca 63 d3 e6 88 61 1e"
    "a5 e2 2f 44 15 cf 95 38 d5 1a 20 0c 27 03 42 72 96 8a 26 4e d6"
    "54 0c 84 83 8d 89 f7 2c 24 46 1a ad 6d 26 f5 9e ca ba 9a cb bb"
    "31 7b 66 d9 02 f4 f2 92 a3 6a c1 b6 39 c6 37 ce 34 31 17 b6 59"
    "62 22 45 31 7b 49 ee da 0c 62 58 f1 00 d7 d9 61 ff b1 38 64 7e"
    "92 ea 33 0f ae ea 6d fa 31 c7 a8 4d c3 bd 7e 1b 7a 6c 71 78 af"
    "36 87 90 18 e3 f2 52 10 7f 24 3d 24 3d c7 33 9d 56 84 c8 b0 37"
    "8b f3 02 44 da 8c 87 c8 43 f5 e5 6e b4 c5 e8 28 0a 2b 48 05 2c"
    "f9 3b 16 49 9a 66 db 7c ca 71 e4 59 94 26 f7 d4 61 e6 6f 99 88"
    "2b d8 9f c5 08 00 be cc a6 2d 6c 74 11 6d bd 29 72 fd a1 fa 80"
    "f8 5d f8 81 ed be 5a 37 66 89 36 b3 35 58 3b 59 91 86 dc 5c 69"
    "18 a3 96 fa 48 a1 81 d6 b6 fa 4f 9d 62 d5 13 af bb 99 2f 2b 99"
    "2f 67 f8 af e6 7f 76 91 3f a3 88 cb 56 30 c8 ca 01 e0 c6 5d 11"
    "c6 6a 1e 2a c4 c8 59 77 b7 c7 a6 99 9b bf 10 dc 35 ae 69 f5 51"
    "56 14 63 6c 0b 9b 68 c1 9e d2 e3 1c 0b 3b 66 76 30 38 eb ba 42"
    "f3 b3 8e dc 03 99 f3 a9 f2 3f aa 63 97 8c 31 7f c9 fa 66 a7 3f"
    "60 f0 50 4d e9 3b 5b 84 5e 27 55 92 c1 23 35 ee 34 0b bc 4f dd"
    "d5 02 78 40 16 e4 b3 be 7e f0 4d da 49 f4 b4 40 a3 0c b5 d2 af"
    "93 98 28 fd 4a e3 79 4e 44 f9 4d f5 a6 31 ed e4 2c 17 19 bf da"
    "bf 02 53 fe 51 75 be 89 8e 75 0e dc 53 37 0d 2b"
)
# {client} send handshake record: the protected client Finished.
CLIENT_FINISHED_RECORD = h(
    "17 03 03 00 35 75 ec 4d c2 38 cc e6"
    "0b 29 80 44 a7 1e 21 9c 56 cc 77 b0 51 7f e9 b9 3c 7a 4b fc 44"
    "d8 7f 38 f8 03 38 ac 98 fc 46 de b3 84 bd 1c ae ac ab 68 67 d7"
    "26 c4 05 46"
)
# {server} send handshake record: the NewSessionTicket under the server's
# application key (sequence number 0).
NEW_SESSION_TICKET_RECORD = h(
    "17 03 03 00 de 3a 6b 8f 90 41 4a 97"
    "d6 95 9c 34 87 68 0d e5 13 4a 2b 24 0e 6c ff ac 11 6e 95 d4 1d"
    "6a f8 f6 b5 80 dc f3 d1 1d 63 c7 58 db 28 9a 01 59 40 25 2f 55"
    "71 3e 06 1d c1 3e 07 88 91 a3 8e fb cf 57 53 ad 8e f1 70 ad 3c"
    "73 53 d1 6d 9d a7 73 b9 ca 7f 2b 9f a1 b6 c0 d4 a3 d0 3f 75 e0"
    "9c 30 ba 1e 62 97 2a c4 6f 75 f7 b9 81 be 63 43 9b 29 99 ce 13"
    "06 46 15 13 98 91 d5 e4 c5 b4 06 f1 6e 3f c1 81 a7 7c a4 75 84"
    "00 25 db 2f 0a 77 f8 1b 5a b0 5b 94 c0 13 46 75 5f 69 23 2c 86"
    "51 9d 86 cb ee ac 87 aa c3 47 d1 43 f9 60 5d 64 f6 50 db 4d 02"
    "3e 70 e9 52 ca 49 fe 51 37 12 1c 74 bc 26 97 68 7e 24 87 46 d6"
    "df 35 30 05 f3 bc e1 86 96 12 9c 81 53 55 6b 3b 6c 67 79 b3 7b"
    "f1 59 85 68 4f"
)
CLIENT_APPLICATION_DATA_RECORD = h(
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94"
    "d0 af fa fe 82 28 ba 55 cb ef ac ea 42 f9 14 aa 66 bc ab 3f 2b"
    "98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b 62 97 4e 1f 5a 62"
    "92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
)
SERVER_APPLICATION_DATA_RECORD = h(
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7"
    "40 e5 38 ad 36 00 5f c4 a4 69 32 fc 32 25 d0 5f 82 aa 1b 36 e3"
    "0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8 fc c4 9c 4b f2 e5"
    "f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d"
)
CLIENT_ALERT_RECORD = h("1703030013c9872760655666b74d7ff1153efd6db6d0b0e3")
SERVER_ALERT_RECORD = h("1703030013b58fd67166ebf599d24720cfbe7efa7a8864a9")
# Both sides send 50 octets 00 01 .. 31, then close_notify (warning, 0).
APPLICATION_DATA = bytes(range(50))
CLOSE_NOTIFY = bytes((1, 0))


def fixed(*chunks: bytes) -> Callable[[int], bytes]:
    """A `random` that hands out the given bytes in order, then fails."""
    queue = list(chunks)

    def random(n: int) -> bytes:
        chunk = queue.pop(0)
        assert len(chunk) == n
        return chunk

    return random


def full_transcript(*messages: bytes) -> Transcript:
    t = Transcript()
    for m in messages:
        t = t.add(m)
    t = t.select_hash(PARAMS.hash_name)
    return t


def test_x25519_shares_and_shared_secret() -> None:
    share = ClientKeyShare.generate(NamedGroup.x25519, fixed(CLIENT_PRIVATE))
    assert share.key_exchange == CLIENT_PUBLIC
    server_share, server_secret = server_key_exchange(
        NamedGroup.x25519, CLIENT_PUBLIC, fixed(SERVER_PRIVATE)
    )
    assert server_share == SERVER_PUBLIC
    assert server_secret == SHARED_SECRET
    assert share.shared_secret(SERVER_PUBLIC) == SHARED_SECRET


def test_client_hello_carries_the_key_share() -> None:
    # A guard on the transcription of the constants above.
    assert len(CLIENT_HELLO) == 196 and CLIENT_PUBLIC in CLIENT_HELLO
    assert len(SERVER_HELLO) == 90 and SERVER_PUBLIC in SERVER_HELLO


def test_transcript_hashes() -> None:
    t = Transcript()
    t = t.add(CLIENT_HELLO)  # before the suite is known
    t = t.select_hash(PARAMS.hash_name)
    t = t.add(SERVER_HELLO)
    assert t.digest() == HELLO_HASH
    t = t.add(ENCRYPTED_EXTENSIONS)
    t = t.add(CERTIFICATE)
    assert t.digest() == CERTIFICATE_HASH
    t = t.add(CERTIFICATE_VERIFY)
    assert t.digest() == CERTIFICATE_VERIFY_HASH
    t = t.add(SERVER_FINISHED)
    assert t.digest() == SERVER_FINISHED_HASH
    assert t.digest() == SERVER_FINISHED_HASH  # digest() does not disturb the state


def test_key_schedule_secrets() -> None:
    ks = KeySchedule(PARAMS)
    assert ks.early_secret == EARLY_SECRET
    assert ks.derive_secret(EARLY_SECRET, b"derived", ks.empty_hash) == DERIVED_FOR_HANDSHAKE
    assert hkdf_extract("sha256", DERIVED_FOR_HANDSHAKE, SHARED_SECRET) == HANDSHAKE_SECRET
    hs = ks.handshake_secrets(SHARED_SECRET, HELLO_HASH)
    assert hs.handshake_secret == HANDSHAKE_SECRET
    assert hs.client_handshake_traffic_secret == C_HS_TRAFFIC
    assert hs.server_handshake_traffic_secret == S_HS_TRAFFIC
    assert ks.derive_secret(HANDSHAKE_SECRET, b"derived", ks.empty_hash) == DERIVED_FOR_MASTER
    ap = ks.application_secrets(HANDSHAKE_SECRET, SERVER_FINISHED_HASH)
    assert ap.master_secret == MASTER_SECRET
    assert ap.client_application_traffic_secret_0 == C_AP_TRAFFIC
    assert ap.server_application_traffic_secret_0 == S_AP_TRAFFIC
    assert ks.exporter_master_secret(ap.master_secret, SERVER_FINISHED_HASH) == EXPORTER_MASTER


def test_secrets_hide_from_repr() -> None:
    ks = KeySchedule(PARAMS)
    hs = ks.handshake_secrets(SHARED_SECRET, HELLO_HASH)
    ap = ks.application_secrets(HANDSHAKE_SECRET, SERVER_FINISHED_HASH)
    for obj, secrets in ((hs, (C_HS_TRAFFIC, HANDSHAKE_SECRET)), (ap, (MASTER_SECRET,))):
        text = repr(obj)
        for s in secrets:
            assert s.hex() not in text and repr(s) not in text


@pytest.mark.parametrize(
    ("secret", "key", "iv"),
    [
        (S_HS_TRAFFIC, S_HS_KEY, S_HS_IV),
        (C_HS_TRAFFIC, C_HS_KEY, C_HS_IV),
        (S_AP_TRAFFIC, S_AP_KEY, S_AP_IV),
        (C_AP_TRAFFIC, C_AP_KEY, C_AP_IV),
    ],
)
def test_traffic_keys(secret: bytes, key: bytes, iv: bytes) -> None:
    assert KeySchedule(PARAMS).traffic_key_iv(secret) == (key, iv)


def test_finished() -> None:
    ks = KeySchedule(PARAMS)
    assert ks.finished_key(S_HS_TRAFFIC) == S_FINISHED_KEY
    assert ks.finished_key(C_HS_TRAFFIC) == C_FINISHED_KEY
    t = full_transcript(CLIENT_HELLO, SERVER_HELLO, ENCRYPTED_EXTENSIONS, CERTIFICATE)
    t = t.add(CERTIFICATE_VERIFY)
    server_verify = ks.finished_verify_data(S_HS_TRAFFIC, t.digest())
    assert server_verify == SERVER_FINISHED[4:]
    t = t.add(SERVER_FINISHED)
    client_verify = ks.finished_verify_data(C_HS_TRAFFIC, t.digest())
    assert client_verify == CLIENT_FINISHED[4:]
    assert ks.finished_matches(C_HS_TRAFFIC, t.digest(), CLIENT_FINISHED[4:])
    assert not ks.finished_matches(S_HS_TRAFFIC, t.digest(), CLIENT_FINISHED[4:])


def test_server_flight_sealed_byte_for_byte() -> None:
    protector = RecordProtector(PARAMS, S_HS_TRAFFIC)
    flight = ENCRYPTED_EXTENSIONS + CERTIFICATE + CERTIFICATE_VERIFY + SERVER_FINISHED
    assert protector.seal(ContentType.handshake, flight) == SERVER_FLIGHT_RECORD
    assert protector.sequence_number == 1


def test_server_flight_opened() -> None:
    deframer = RecordDeframer()
    deframer.feed(SERVER_FLIGHT_RECORD)
    record = deframer.next_record()
    assert record is not None
    content_type, content = RecordUnprotector(PARAMS, S_HS_TRAFFIC).open(record)
    assert content_type == ContentType.handshake
    assert bytes(content) == ENCRYPTED_EXTENSIONS + CERTIFICATE + CERTIFICATE_VERIFY + (
        SERVER_FINISHED
    )


def test_client_finished_record() -> None:
    deframer = RecordDeframer()
    deframer.feed(CLIENT_FINISHED_RECORD)
    record = deframer.next_record()
    assert record is not None
    content_type, content = RecordUnprotector(PARAMS, C_HS_TRAFFIC).open(record)
    assert (content_type, bytes(content)) == (ContentType.handshake, CLIENT_FINISHED)
    sealed = RecordProtector(PARAMS, C_HS_TRAFFIC).seal(ContentType.handshake, CLIENT_FINISHED)
    assert sealed == CLIENT_FINISHED_RECORD


def test_server_application_records() -> None:
    # Under server_application_traffic_secret_0: NewSessionTicket (seq 0),
    # application data (seq 1), close_notify (seq 2), all in one read.
    deframer = RecordDeframer()
    deframer.feed(NEW_SESSION_TICKET_RECORD + SERVER_APPLICATION_DATA_RECORD + SERVER_ALERT_RECORD)
    opener = RecordUnprotector(PARAMS, S_AP_TRAFFIC)
    opened = []
    while (record := deframer.next_record()) is not None:
        content_type, content = opener.open(record)
        opened.append((content_type, bytes(content)))
    assert [t for t, _ in opened] == [
        ContentType.handshake,
        ContentType.application_data,
        ContentType.alert,
    ]
    ticket = opened[0][1]
    assert ticket[0] == 4 and int.from_bytes(ticket[1:4], "big") == len(ticket) - 4
    assert opened[1][1] == APPLICATION_DATA
    assert opened[2][1] == CLOSE_NOTIFY

    sealer = RecordProtector(PARAMS, S_AP_TRAFFIC)
    assert sealer.seal(ContentType.handshake, ticket) == NEW_SESSION_TICKET_RECORD
    assert sealer.seal(ContentType.application_data, APPLICATION_DATA) == (
        SERVER_APPLICATION_DATA_RECORD
    )
    assert sealer.seal(ContentType.alert, CLOSE_NOTIFY) == SERVER_ALERT_RECORD


def test_client_application_records() -> None:
    sealer = RecordProtector(PARAMS, C_AP_TRAFFIC)
    assert sealer.seal(ContentType.application_data, APPLICATION_DATA) == (
        CLIENT_APPLICATION_DATA_RECORD
    )
    assert sealer.seal(ContentType.alert, CLOSE_NOTIFY) == CLIENT_ALERT_RECORD
    deframer = RecordDeframer()
    deframer.feed(CLIENT_APPLICATION_DATA_RECORD + CLIENT_ALERT_RECORD)
    opener = RecordUnprotector(PARAMS, C_AP_TRAFFIC)
    first, second = deframer.next_record(), deframer.next_record()
    assert first is not None and second is not None
    assert opener.open(first)[0] == ContentType.application_data
    kind, content = opener.open(second)
    assert (kind, bytes(content)) == (ContentType.alert, CLOSE_NOTIFY)


def test_records_out_of_order_fail() -> None:
    # The sequence number is part of the nonce: skipping a record breaks it.
    deframer = RecordDeframer()
    deframer.feed(SERVER_APPLICATION_DATA_RECORD)
    record = deframer.next_record()
    assert record is not None
    with pytest.raises(ProtocolError) as info:
        RecordUnprotector(PARAMS, S_AP_TRAFFIC).open(record)
    assert info.value.alert == AlertDescription.bad_record_mac


def _rfc_certificate_key() -> rsa.RSAPublicKey:
    # Certificate message: type(1) len(3) context(1) list_len(3) cert_len(3) DER
    der = CERTIFICATE[11 : 11 + int.from_bytes(CERTIFICATE[8:11], "big")]
    key = x509.load_der_x509_certificate(der).public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    return key


def test_certificate_verify_content() -> None:
    # The RFC's server signs with rsa_pss_rsae_sha256 over §4.4.3's content;
    # checking it with the bare primitive proves our content is the RFC's.
    key = _rfc_certificate_key()
    assert int.from_bytes(CERTIFICATE_VERIFY[4:6], "big") == SignatureScheme.rsa_pss_rsae_sha256
    signature = CERTIFICATE_VERIFY[8:]
    message = certificate_verify_message(True, CERTIFICATE_HASH)
    key.verify(
        signature,
        message,
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
        hashes.SHA256(),
    )


def test_certificate_verify_refuses_the_1024_bit_key() -> None:
    key = _rfc_certificate_key()
    assert key.key_size == 1024
    with pytest.raises(ProtocolError) as info:
        verify(
            SignatureScheme.rsa_pss_rsae_sha256,
            key,
            certificate_verify_message(True, CERTIFICATE_HASH),
            CERTIFICATE_VERIFY[8:],
        )
    assert info.value.alert == AlertDescription.insufficient_security
