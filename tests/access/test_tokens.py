"""Signed tokens: what a forged, tampered, unsigned, expired, revoked or retired token gets (401), and
that rotation keeps sessions alive while retiring ends them."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient

from leitstand.access.tokens import AUDIENCE, KeyRing
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.tenancy import Role
from tests.conftest import login


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def me(client: TestClient, token: str) -> tuple[int, str]:
    response = client.get("/api/v1/auth/me", headers=bearer(token))
    return response.status_code, response.text


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


@pytest.fixture
def session(client: TestClient) -> str:
    return login(client, "acme-viewer")["authorization"].split(" ", 1)[1]


def test_a_session_token_is_an_eddsa_jwt_with_expiry_and_key_id(client: TestClient, session: str) -> None:
    header = jwt.get_unverified_header(session)
    assert header["alg"] == "EdDSA"
    assert header["kid"] in {k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]}
    claims = claims_of(session)
    assert claims["aud"] == AUDIENCE
    assert claims["tenant"] == "acme"
    assert timedelta(hours=11) < timedelta(seconds=claims["exp"] - claims["iat"]) <= timedelta(hours=12)
    discovery = client.get("/.well-known/openid-configuration").json()
    assert discovery["jwks_uri"].endswith("/.well-known/jwks.json")


def test_every_installation_has_its_own_random_key(runtime: Runtime, tmp_path) -> None:
    other = Runtime.build(load_settings(data_dir=tmp_path / "other"))
    try:
        mine = {k["x"] for k in runtime.identity.keys.jwks()["keys"]}
        theirs = {k["x"] for k in other.identity.keys.jwks()["keys"]}
        assert mine.isdisjoint(theirs)
    finally:
        other.stop()


def test_forged_and_malformed_tokens_are_refused(client: TestClient, session: str) -> None:
    header, payload, signature = session.split(".")
    kid = jwt.get_unverified_header(session)["kid"]
    claims = claims_of(session)
    stranger_key = Ed25519PrivateKey.generate()
    forged = {
        "garbage": "not-a-token",
        "legacy opaque": "lst_" + "A" * 43,
        "unsigned (alg none)": f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.",
        "signature removed": f"{header}.{payload}.",
        "tampered tenant": f"{header}.{b64({**claims, 'tenant': 'rival', 'sub': '3'})}.{signature}",
        "tampered role": f"{header}.{b64({**claims, 'role': 'tenant_admin'})}.{signature}",
        "other key, same kid": jwt.encode(claims, stranger_key, algorithm="EdDSA", headers={"kid": kid}),
        "unknown kid": jwt.encode(claims, stranger_key, algorithm="EdDSA", headers={"kid": "nope"}),
        "HS256 with a shared secret": jwt.encode(claims, "s" * 32, algorithm="HS256", headers={"kid": kid}),
    }
    for name, token in forged.items():
        status, text = me(client, token)
        assert status == 401, f"{name}: {text}"
    assert me(client, session)[0] == 200


def test_our_own_key_signing_for_another_issuer_or_audience_is_refused(
    client: TestClient, runtime: Runtime, session: str
) -> None:
    """The signature is right, the jti is on record: only the issuer or the audience is wrong."""
    from cryptography.hazmat.primitives import serialization

    claims = claims_of(session)
    kid = jwt.get_unverified_header(session)["kid"]
    pem = next(k.private_pem for k in runtime.metadata.signing_keys() if k.kid == kid)
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    for name, changed in (("issuer", {"iss": "someone-else"}), ("audience", {"aud": "another-api"})):
        token = jwt.encode({**claims, **changed}, key, algorithm="EdDSA", headers={"kid": kid})
        status, text = me(client, token)
        assert status == 401, f"{name}: {text}"
    same = jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid})
    assert me(client, same)[0] == 200  # the control: re-signed unchanged, it is accepted


def test_an_expired_token_is_refused_even_with_a_valid_signature(
    client: TestClient, runtime: Runtime, session: str
) -> None:
    claims = claims_of(session)
    now = int(time.time())
    expired = runtime.identity.keys.sign({**claims, "iat": now - 7200, "exp": now - 3600})
    status, text = me(client, expired)
    assert status == 401
    assert "expired" in text


def test_a_signed_token_whose_id_was_never_issued_is_refused(
    client: TestClient, runtime: Runtime, session: str
) -> None:
    """Signature alone is not enough: a token must also be on record (a stolen signing key cannot
    mint sessions the store does not know)."""
    claims = claims_of(session)
    minted = runtime.identity.keys.sign({**claims, "jti": "never-issued"})
    assert me(client, minted)[0] == 401


def test_logout_revokes_the_token_at_once(client: TestClient, session: str) -> None:
    assert client.post("/api/v1/auth/logout", headers=bearer(session)).status_code == 204
    status, text = me(client, session)
    assert status == 401
    assert "revoked" in text


def test_rotation_keeps_old_tokens_and_retiring_ends_them(client: TestClient, runtime: Runtime) -> None:
    old = login(client, "acme-viewer")
    runtime.identity.create_user("platform", "root", "correct horse battery", Role.PLATFORM_ADMIN)
    root = login(client, "root")
    rotated = client.post("/api/v1/admin/keys/rotate", json={"retire_others": False}, headers=root).json()
    new = login(client, "acme-viewer")
    assert jwt.get_unverified_header(new["authorization"].split()[1])["kid"] == rotated["signing_key"]
    assert client.get("/api/v1/auth/me", headers=old).status_code == 200
    assert len(client.get("/.well-known/jwks.json").json()["keys"]) == 2

    retired = client.post("/api/v1/admin/keys/rotate", json={"retire_others": True}, headers=root).json()
    assert len(retired["retired"]) == 2
    assert client.get("/api/v1/auth/me", headers=old).status_code == 401
    assert client.get("/api/v1/auth/me", headers=new).status_code == 401
    assert client.get("/api/v1/auth/me", headers=root).status_code == 401  # its own token too
    assert [k["kid"] for k in client.get("/.well-known/jwks.json").json()["keys"]] == [retired["signing_key"]]
    audit = runtime.access.audit.entries("platform", action="keys_rotated")
    assert len(audit) == 2


def test_a_rotation_on_another_node_is_picked_up(runtime: Runtime) -> None:
    """Two API nodes share the metadata store: a token signed after node B rotated verifies on node A."""
    node_b = KeyRing(runtime.metadata, runtime.identity.keys.issuer)
    node_b.rotate()
    principal = runtime.identity.create_user("acme", "late", "correct horse battery", Role.VIEWER)
    token, _ = runtime.identity.issue_api_token(principal, "x", timedelta(days=1))  # node A signs
    assert runtime.identity.authenticate(token) == principal
    claims = claims_of(token)
    by_b = node_b.sign({**claims})
    assert runtime.identity.authenticate(by_b) == principal


def test_api_keys_are_listed_and_revoked_by_the_tenant_admin_only(client: TestClient, admin: dict) -> None:
    issued = client.post("/api/v1/auth/tokens", json={"name": "script", "days": 7}, headers=admin).json()
    listed = client.get("/api/v1/auth/tokens", headers=admin).json()["tokens"]
    assert [(t["name"], t["username"]) for t in listed] == [("script", "acme-admin")]
    assert issued["token"] not in str(listed)
    rival = login(client, "rival-admin")
    token_id = listed[0]["id"]
    assert client.delete(f"/api/v1/auth/tokens/{token_id}", headers=rival).status_code == 404
    assert client.delete("/api/v1/auth/tokens/unknown", headers=rival).status_code == 404
    assert me(client, issued["token"])[0] == 200
    assert client.delete(f"/api/v1/auth/tokens/{token_id}", headers=admin).status_code == 204
    assert me(client, issued["token"])[0] == 401
    expires = datetime.fromisoformat(issued["expires_at"])
    assert expires - datetime.now(UTC) <= timedelta(days=7)


def test_a_retirement_elsewhere_holds_here_within_the_reload_interval(runtime: Runtime) -> None:
    """Another node (or the CLI) retires every key: this process stops accepting and signing with the old
    key once it re-reads the keys, at the latest RELOAD_EVERY_S later."""
    from leitstand.access import tokens

    clock = [0.0]
    here = KeyRing(runtime.metadata, "leitstand", monotonic=lambda: clock[0])
    old_kid = jwt.get_unverified_header(here.sign({"sub": "1"}))["kid"]
    elsewhere = KeyRing(runtime.metadata, "leitstand")
    new_kid, retired = elsewhere.rotate(retire_others=True)
    assert old_kid in retired
    clock[0] += tokens.RELOAD_EVERY_S + 1
    assert jwt.get_unverified_header(here.sign({"sub": "1"}))["kid"] == new_kid
    assert [k["kid"] for k in here.jwks()["keys"]] == [new_kid]


def test_made_up_key_ids_do_not_make_every_request_read_the_keys(runtime: Runtime) -> None:
    reads = []

    class Counting:
        def __getattr__(self, name: str):
            return getattr(runtime.metadata, name)

        def signing_keys(self):
            reads.append(1)
            return runtime.metadata.signing_keys()

    keys = KeyRing(Counting(), "leitstand")  # type: ignore[arg-type]
    stranger = Ed25519PrivateKey.generate()
    for i in range(20):
        forged = jwt.encode({"sub": "1"}, stranger, algorithm="EdDSA", headers={"kid": f"made-up-{i}"})
        with pytest.raises(Exception, match="unknown or retired"):
            keys.verify(forged)
    assert len(reads) <= 2  # the first load, and at most one early re-read
