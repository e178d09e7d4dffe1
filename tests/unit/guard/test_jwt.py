"""Token verification: a good token gives its principal; every attack gives TokenError with
the rule it broke (docs/security.md; attack list of the reference, §6)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import given
from hypothesis import strategies as st
from joserfc import jws, jwt
from joserfc.jwk import ECKey, KeySet, OctKey, OKPKey, RSAKey

from ssegate.guard.jwt import (
    MAX_TOKEN_BYTES,
    JwtRules,
    Principal,
    TokenError,
    TokenProblem,
    verify,
)
from ssegate.guard.keys import key_set
from tests.support.tokens import AUDIENCE, ISSUER, Issuer, b64, unsigned

NOW = time.time()
RULES = JwtRules(
    issuer=ISSUER,
    audience=AUDIENCE,
    algorithms=("RS256", "ES256"),
    attributes={"tenant": "org.id"},
)


@pytest.fixture(scope="module")
def issuer() -> Issuer:
    issuer = Issuer()
    issuer.add("ec-1", "ES256")
    return issuer


@pytest.fixture(scope="module")
def keys(issuer: Issuer) -> KeySet:
    return key_set(issuer.jwks()["keys"], RULES.algorithms)


def problem(token: str, keys: KeySet, rules: JwtRules = RULES, now: float = NOW) -> TokenProblem:
    with pytest.raises(TokenError) as caught:
        verify(token, keys, rules, now)
    return caught.value.problem


def test_a_good_token_gives_its_principal(issuer: Issuer, keys: KeySet) -> None:
    token = issuer.token(scope="read:prices write:notes", org={"id": "acme"})
    principal = verify(token, keys, RULES, NOW)
    assert principal == Principal(
        "alice",
        frozenset({"read:prices", "write:notes"}),
        {"tenant": "acme"},
        principal.expires_at,
        ISSUER,
    )
    ec = verify(issuer.token("ec-1", scope=["a", "b"]), keys, RULES, NOW)
    assert ec.roles == frozenset({"a", "b"})


def test_alg_none_in_any_spelling_is_refused(issuer: Issuer, keys: KeySet) -> None:
    claims = issuer.claims()
    for alg in ("none", "None", "NONE"):
        assert problem(unsigned(claims, alg), keys) is TokenProblem.ALGORITHM


def test_hs256_signed_with_the_rsa_public_key_is_refused(issuer: Issuer, keys: KeySet) -> None:
    public = issuer.keys["rsa-1"].as_pem(private=False)
    header = b64(json.dumps({"alg": "HS256", "kid": "rsa-1"}).encode())
    payload = b64(json.dumps(issuer.claims()).encode())
    signature = hmac.new(public, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64(signature)}"
    assert problem(token, keys) is TokenProblem.ALGORITHM
    # Even where HS256 is accepted, the RSA key cannot serve as its secret.
    hs_rules = JwtRules(ISSUER, AUDIENCE, ("RS256", "HS256"))
    assert problem(token, keys, hs_rules) is TokenProblem.ALGORITHM


def test_the_tokens_alg_must_be_its_keys(issuer: Issuer, keys: KeySet) -> None:
    other = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    token = jwt.encode({"alg": "ES256", "kid": "rsa-1"}, issuer.claims(), ECKey.generate_key())
    assert problem(token, keys) is TokenProblem.ALGORITHM
    swapped = jwt.encode({"alg": "RS256", "kid": "ec-1"}, issuer.claims(), other)
    assert problem(swapped, keys) is TokenProblem.ALGORITHM


@pytest.mark.parametrize("kid", ["nope", "../../dev/null", "' or 1=1 --", "x" * 2000, "", None])
def test_unknown_missing_or_hostile_kids_are_refused(
    issuer: Issuer, keys: KeySet, kid: object
) -> None:
    header = {"alg": "RS256", "kid": kid} if kid is not None else {"alg": "RS256"}
    token = jwt.encode(header, issuer.claims(), issuer.keys["rsa-1"])
    assert problem(token, keys) is TokenProblem.UNKNOWN_KEY  # two keys: a kid is needed


def raw_token(header: dict[str, object], claims: dict[str, object], key: RSAKey) -> str:
    """A token signed by hand (RS256), for headers joserfc refuses to write."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    private = key.private_key
    assert private is not None
    signature = private.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def test_a_kid_that_is_not_a_string_is_refused(issuer: Issuer, keys: KeySet) -> None:
    token = raw_token({"alg": "RS256", "kid": 7}, issuer.claims(), issuer.keys["rsa-1"])
    assert problem(token, keys) is TokenProblem.UNKNOWN_KEY


def test_keys_named_by_the_token_are_ignored(issuer: Issuer, keys: KeySet) -> None:
    attacker = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256"})
    for extra in (
        {"jwk": attacker.as_dict(private=False)},
        {"jku": "https://evil.test/jwks.json"},
        {"x5u": "https://evil.test/cert.pem"},
    ):
        token = jwt.encode({"alg": "RS256", "kid": "rsa-1", **extra}, issuer.claims(), attacker)
        assert problem(token, keys) is TokenProblem.SIGNATURE, extra


def test_crit_is_refused(issuer: Issuer, keys: KeySet) -> None:
    for crit in (["exp"], ["x-unknown"], []):
        header = {"alg": "RS256", "kid": "rsa-1", "crit": crit, "x-unknown": 1, "exp": 1}
        token = raw_token(header, issuer.claims(), issuer.keys["rsa-1"])
        assert problem(token, keys) is TokenProblem.ALGORITHM, crit


def test_tampering_breaks_the_signature(issuer: Issuer, keys: KeySet) -> None:
    token = issuer.token()
    header, payload, signature = token.split(".")
    forged = b64(json.dumps(issuer.claims(sub="mallory")).encode())
    assert problem(f"{header}.{forged}.{signature}", keys) is TokenProblem.SIGNATURE
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    assert problem(f"{header}.{payload}.{flipped}", keys) is TokenProblem.SIGNATURE
    assert problem(f"{header}.{payload}.", keys) is TokenProblem.SIGNATURE
    zero = b64(b"\0" * 64)  # ECDSA r = s = 0 (CVE-2022-21449 class)
    ec_header, ec_payload, _ = issuer.token("ec-1").split(".")
    assert problem(f"{ec_header}.{ec_payload}.{zero}", keys) is TokenProblem.SIGNATURE


def test_times_with_and_without_leeway(issuer: Issuer, keys: KeySet) -> None:
    now = int(NOW)
    assert problem(issuer.token(exp=now - 1), keys) is TokenProblem.EXPIRED
    assert problem(issuer.token(exp=now), keys, now=now) is TokenProblem.EXPIRED
    assert problem(issuer.token(nbf=now + 5), keys) is TokenProblem.NOT_YET_VALID
    assert problem(issuer.token(exp=None), keys) is TokenProblem.CLAIMS
    assert problem(issuer.token(exp="soon"), keys) is TokenProblem.CLAIMS
    lenient = JwtRules(ISSUER, AUDIENCE, ("RS256",), leeway=10)
    assert verify(issuer.token(exp=now - 5, nbf=now + 5), keys, lenient, now).identity == "alice"
    assert problem(issuer.token(exp=now - 10), keys, lenient, now) is TokenProblem.EXPIRED


def test_issuer_and_audience(issuer: Issuer, keys: KeySet) -> None:
    for iss in ("https://other.test", ISSUER + "x", ISSUER[:-1], None):
        assert problem(issuer.token(iss=iss), keys) is TokenProblem.ISSUER, iss
    for aud in ("https://other.test", ["a", "b"], AUDIENCE[:-1], None):
        assert problem(issuer.token(aud=aud), keys) is TokenProblem.AUDIENCE, aud
    assert verify(issuer.token(aud=["x", AUDIENCE]), keys, RULES, NOW).identity == "alice"


def test_identity_and_roles_claims(issuer: Issuer, keys: KeySet) -> None:
    assert problem(issuer.token(sub=None), keys) is TokenProblem.CLAIMS
    assert problem(issuer.token(sub=""), keys) is TokenProblem.CLAIMS
    assert problem(issuer.token(sub=5), keys) is TokenProblem.CLAIMS
    assert problem(issuer.token(scope=[1, 2]), keys) is TokenProblem.CLAIMS
    assert verify(issuer.token(scope=None), keys, RULES, NOW).roles == frozenset()
    nested = JwtRules(ISSUER, AUDIENCE, ("RS256",), roles_claim="realm_access.roles")
    token = issuer.token(realm_access={"roles": ["admin"]})
    assert verify(token, keys, nested, NOW).roles == frozenset({"admin"})


def test_sizes_and_shapes(issuer: Issuer, keys: KeySet) -> None:
    huge = issuer.token(scope=" ".join(f"role{i}" for i in range(10_000)))
    assert len(huge) > MAX_TOKEN_BYTES
    assert problem(huge, keys) is TokenProblem.TOO_LARGE
    assert problem("a.b.c.d.e", keys) is TokenProblem.MALFORMED  # a JWE is not decrypted
    assert problem("", keys) is TokenProblem.MALFORMED
    assert problem("..", keys) is TokenProblem.MALFORMED


def test_other_key_types_and_hmac_when_allowed() -> None:
    okp = OKPKey.generate_key("Ed25519", parameters={"kid": "ed", "alg": "Ed25519"})
    secret = OctKey.generate_key(256, parameters={"kid": "hs", "alg": "HS256"})
    rules = JwtRules(ISSUER, AUDIENCE, ("Ed25519", "HS256"))
    keys = key_set([okp.as_dict(private=False), secret.as_dict()], rules.algorithms)
    claims = Issuer().claims()
    for key in (okp, secret):
        registry = jws.JWSRegistry(algorithms=[key.alg])
        token = jwt.encode({"alg": key.alg, "kid": key.kid}, claims, key, registry=registry)
        assert verify(token, keys, rules, NOW).identity == "alice"


SEGMENT = st.one_of(
    st.text(max_size=40),
    st.binary(max_size=60).map(lambda b: b64(b)),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3).map(
        lambda d: b64(json.dumps(d).encode())
    ),
)


GARBAGE_KEYS = key_set(
    [RSAKey.generate_key(2048, parameters={"kid": "k", "alg": "RS256"}).as_dict(private=False)],
    ("RS256",),
)


@given(st.lists(SEGMENT, min_size=0, max_size=5).map(".".join))
def test_any_garbage_is_a_token_error_never_anything_else(token: str) -> None:
    with pytest.raises(TokenError):
        verify(token, GARBAGE_KEYS, RULES, NOW)
