"""A company's own OpenID Connect provider: its tokens are verified against its published keys (a
real HTTP server on loopback serves them), mapped to a tenant and role, and refused otherwise."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from leitstand.api.app import create_app
from leitstand.api.runtime import Runtime
from leitstand.api.settings import load_settings
from leitstand.domain.errors import InputError
from tests.conftest import TEST_SETTINGS

ISSUER = "https://idp.supplier.example/realms/plant"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks_url() -> Iterator[str]:
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEY.public_key()))
    body = json.dumps({"keys": [{**jwk, "kid": "idp-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/certs"
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(tmp_path: Path, jwks_url: str) -> Iterator[TestClient]:
    provider = {
        "name": "supplier-idp",
        "issuer": ISSUER,
        "audience": "leitstand",
        "jwks_url": jwks_url,
        "tenant_claim": "org",
        "tenant_map": {"Supplier A": "acme"},
        "role_claim": "groups",
        "role_map": {"plant-engineers": "engineer", "everyone": "viewer"},
    }
    rt = Runtime.build(load_settings(data_dir=tmp_path / "d", oidc_providers=[provider], **TEST_SETTINGS))
    rt.identity.create_tenant("acme", "Acme")
    with TestClient(create_app(rt)) as c:
        yield c


def idp_token(key: rsa.RSAPrivateKey = KEY, **overrides: object) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "leitstand",
        "sub": "f3c1",
        "preferred_username": "erika",
        "org": "Supplier A",
        "groups": ["everyone", "plant-engineers"],
        "iat": now,
        "exp": now + 300,
        **overrides,
    }
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "idp-1"})


def me(client: TestClient, token: str) -> tuple[int, dict]:
    response = client.get("/api/v1/auth/me", headers={"authorization": f"Bearer {token}"})
    return response.status_code, response.json()


def test_a_provider_token_maps_to_tenant_and_highest_role(client: TestClient) -> None:
    status, body = me(client, idp_token())
    assert status == 200
    # named by the provider's subject id: a user who renames itself to someone else stays itself
    assert body == {"tenant": "acme", "username": "supplier-idp:f3c1", "role": "engineer", "site": None}
    renamed = me(client, idp_token(sub="m4ll", preferred_username="erika"))[1]
    assert renamed["username"] == "supplier-idp:m4ll"
    # the role follows the provider's claim on every request
    assert me(client, idp_token(groups=["everyone"]))[1]["role"] == "viewer"


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "someone-else"},
        {"iss": "https://evil.example"},
        {"org": "Unknown Org"},
        {"groups": ["visitors"]},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
    ],
)
def test_tokens_the_provider_did_not_mean_for_us_are_refused(client: TestClient, overrides: dict) -> None:
    assert me(client, idp_token(**overrides))[0] == 401


def test_a_token_signed_by_another_key_is_refused(client: TestClient) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert me(client, idp_token(other))[0] == 401


def test_a_provider_may_not_grant_platform_or_gateway_roles(tmp_path: Path) -> None:
    provider = {
        "name": "idp",
        "issuer": ISSUER,
        "audience": "x",
        "jwks_url": "http://127.0.0.1:9/none",
        "tenant": "acme",
        "role_map": {"admins": "platform_admin"},
    }
    with pytest.raises(InputError, match="tenant roles"):
        Runtime.build(load_settings(data_dir=tmp_path / "d", oidc_providers=[provider]))


def test_provisioning_and_role_changes_are_audited_and_external_users_mint_no_keys(
    client: TestClient,
) -> None:
    token = idp_token()
    assert me(client, token)[0] == 200
    assert me(client, idp_token(groups=["everyone"]))[0] == 200
    headers = {"authorization": f"Bearer {token}"}
    refused = client.post("/api/v1/auth/tokens", json={"name": "x"}, headers=headers)
    assert refused.status_code == 403
    assert "identity provider" in refused.json()["detail"]
    rt = client.app.state.runtime  # type: ignore[attr-defined]
    actions = [(e["action"], e["detail"].get("by")) for e in rt.access.audit.entries("acme")]
    assert ("user_provisioned", None) in actions
    assert ("role_changed", "supplier-idp") in actions


def test_two_providers_with_one_name_are_refused(tmp_path: Path) -> None:
    provider = {
        "name": "idp",
        "issuer": ISSUER,
        "audience": "x",
        "jwks_url": "http://127.0.0.1:9/",
        "tenant": "acme",
    }
    twin = {**provider, "issuer": "https://other.example"}
    with pytest.raises(InputError, match="same name"):
        Runtime.build(load_settings(data_dir=tmp_path / "d", oidc_providers=[provider, twin]))
