"""Decision tokens: what is signed verifies to the same content; nothing else verifies."""

from __future__ import annotations

import base64
import hashlib
import hmac
import string

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.decisions.tokens import MAX_TOKEN_CHARS, DecisionToken, TokenSigner
from engine.errors import InvalidToken

DETERMINISTIC = settings(deadline=None, derandomize=True, database=None)
KEY = b"k" * 32


B64_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def with_unused_bits_flipped(sig: str) -> str:
    """The same signature bytes spelled differently: 22 base64 chars carry 132 bits for
    16 bytes, so the lowest bit of the last char is not part of the signature."""
    last = B64_ALPHABET.index(sig[-1])
    return sig[:-1] + B64_ALPHABET[last ^ 1]


def test_signed_token_verifies_to_the_same_content(
    signer: TokenSigner, decision_token: DecisionToken
) -> None:
    assert signer.verify(signer.sign(decision_token)) == decision_token


def test_optional_fields_survive_the_round_trip(
    signer: TokenSigner, decision_token: DecisionToken
) -> None:
    token = decision_token._replace(
        experiment="exp-1",
        arm="b",
        model_version="2024-05-01",
        propensity=0.25,
        segment="vip",
    )
    assert signer.verify(signer.sign(token)) == token


def test_token_has_version_payload_and_signature_parts(
    signer: TokenSigner, decision_token: DecisionToken
) -> None:
    version, payload, sig = signer.sign(decision_token).split(".")
    assert version == "1"
    assert payload
    assert len(sig) == 22  # 16 signature bytes, unpadded base64url


def test_signing_is_deterministic(signer: TokenSigner, decision_token: DecisionToken) -> None:
    assert signer.sign(decision_token) == signer.sign(decision_token)


def test_token_signed_with_another_key_is_rejected(decision_token: DecisionToken) -> None:
    text = TokenSigner(b"other-key").sign(decision_token)
    with pytest.raises(InvalidToken, match="signature does not match"):
        TokenSigner(KEY).verify(text)


def test_tampered_payload_is_rejected(signer: TokenSigner, decision_token: DecisionToken) -> None:
    version, _, sig = signer.sign(decision_token).split(".")
    forged = decision_token._replace(variant="winner")
    payload = b64(orjson.dumps(tuple(forged)))
    with pytest.raises(InvalidToken):
        signer.verify(f"{version}.{payload}.{sig}")


def test_tampered_signature_is_rejected(signer: TokenSigner, decision_token: DecisionToken) -> None:
    version, payload, sig = signer.sign(decision_token).split(".")
    flipped = ("B" if sig[0] == "A" else "A") + sig[1:]
    with pytest.raises(InvalidToken, match="signature does not match"):
        signer.verify(f"{version}.{payload}.{flipped}")


def test_signature_of_one_token_does_not_verify_another(
    signer: TokenSigner, decision_token: DecisionToken
) -> None:
    _, _, sig = signer.sign(decision_token).split(".")
    version, payload, _ = signer.sign(decision_token._replace(slot="footer")).split(".")
    with pytest.raises(InvalidToken):
        signer.verify(f"{version}.{payload}.{sig}")


@pytest.mark.parametrize(
    "variant",
    ["padded", "junk-inside", "junk-appended", "noncanonical-last-char"],
)
def test_only_the_exact_signed_string_verifies(
    signer: TokenSigner, decision_token: DecisionToken, variant: str
) -> None:
    # Clients echo the token back verbatim; any other spelling of it is a forgery or damage.
    version, payload, sig = signer.sign(decision_token).split(".")
    altered = {
        "padded": sig + "==",
        "junk-inside": sig[:5] + "!!!!" + sig[5:],
        "junk-appended": sig + "~~~~",
        "noncanonical-last-char": with_unused_bits_flipped(sig),
    }[variant]
    assert altered != sig
    with pytest.raises(InvalidToken):
        signer.verify(f"{version}.{payload}.{altered}")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1",
        "1.",
        "1..",
        "2.abc.def",
        "1.abc.",
        "1..def",
        "not a token",
        "1.é.abc",
        "1.abc.é",
    ],
)
def test_malformed_strings_are_rejected(signer: TokenSigner, text: str) -> None:
    with pytest.raises(InvalidToken):
        signer.verify(text)


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"{}",
        b'["too", "few"]',
        b"42",
        b'["a","b","c","d","e",1.0,1,null,null,null,"s","x"]',
    ],
    ids=["not-json", "object", "too-few-fields", "number", "too-many-fields"],
)
def test_correctly_signed_payload_of_the_wrong_shape_is_rejected(payload: bytes) -> None:
    signed = "1." + b64(payload)
    sig = b64(hmac.digest(KEY, signed.encode(), hashlib.sha256)[:16])
    with pytest.raises(InvalidToken, match="malformed token"):
        TokenSigner(KEY).verify(f"{signed}.{sig}")


def test_overly_long_token_is_rejected_before_any_work(signer: TokenSigner) -> None:
    with pytest.raises(InvalidToken, match="too long"):
        signer.verify("1." + "A" * MAX_TOKEN_CHARS + ".sig")


ids = st.text(min_size=1, max_size=20)
optional = st.none() | st.text(max_size=20)


@DETERMINISTIC
@given(
    token=st.builds(
        DecisionToken,
        decision_id=ids,
        pid=ids,
        slot=ids,
        variant=ids,
        policy=st.sampled_from(["rules", "fallback", "bandit"]),
        propensity=st.floats(0, 1, allow_nan=False),
        issued_at=st.integers(0, 2**40),
        experiment=optional,
        arm=optional,
        model_version=optional,
        segment=optional,
    )
)
def test_any_token_round_trips(token: DecisionToken) -> None:
    signer = TokenSigner(KEY)
    text = signer.sign(token)
    assert text.isascii()
    assert signer.verify(text) == token
