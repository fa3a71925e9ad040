"""Signed tokens: EdDSA (Ed25519) JWTs with expiry, a key id, and keys that rotate.

No signing key ships with Leitstand: the first start of an installation generates one at random and
keeps it in the metadata store, so every API node of the installation signs and verifies alike.
Rotation adds a new key that signs from then on; older keys keep verifying the tokens they signed until
they are retired (at once, after a suspected leak). The public keys are published as a JWK Set.

A valid signature is not enough: every token also has a row (its `jti`) in the metadata store, so a
logout or a revoked API key ends the token at once, and the role is read fresh on every request.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from leitstand.domain.errors import Unauthenticated
from leitstand.store.interfaces import MetadataStore, SigningKey

ALGORITHM = "EdDSA"
AUDIENCE = "leitstand-api"
CLOCK_SKEW = timedelta(seconds=30)
REQUIRED_CLAIMS = ["exp", "iat", "jti", "sub", "iss", "aud"]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _public_x(key: Ed25519PublicKey) -> str:
    return _b64url(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def thumbprint(x: str) -> str:
    """RFC 7638 JWK thumbprint of an Ed25519 public key: the key id."""
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return _b64url(hashlib.sha256(canonical.encode()).digest())


def new_signing_key(now: datetime) -> SigningKey:
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return SigningKey(thumbprint(_public_x(private.public_key())), pem, now)


# How often a process re-reads the keys (another node or the CLI may have rotated or retired them), and
# how often at most a token naming an unknown key may make it re-read them early.
RELOAD_EVERY_S = 30.0
UNKNOWN_KID_RELOAD_S = 10.0


class KeyRing:
    """The installation's signing keys, loaded from the metadata store and re-read every
    RELOAD_EVERY_S, so a rotation or retirement elsewhere holds here within that time."""

    def __init__(
        self,
        metadata: MetadataStore,
        issuer: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata = metadata
        self.issuer = issuer
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.Lock()
        # (signing key id, every key that verifies): replaced whole, never changed in place
        self._ring: tuple[str, dict[str, Ed25519PrivateKey]] = ("", {})
        self._loaded_at = self._early_reload_at = float("-inf")
        self._load()
        if not self._ring[0]:
            self.rotate()

    def _load(self) -> None:
        with self._lock:
            keys = [k for k in self._metadata.signing_keys() if k.retired_at is None]
            private: dict[str, Ed25519PrivateKey] = {}
            for key in keys:
                loaded = serialization.load_pem_private_key(key.private_pem.encode(), password=None)
                assert isinstance(loaded, Ed25519PrivateKey)
                private[key.kid] = loaded
            self._ring = (keys[-1].kid if keys else "", private)
            self._loaded_at = self._monotonic()

    def _current(self) -> tuple[str, dict[str, Ed25519PrivateKey]]:
        if self._monotonic() - self._loaded_at > RELOAD_EVERY_S:
            self._load()
        return self._ring

    def rotate(self, retire_others: bool = False) -> tuple[str, list[str]]:
        """Make a new key the signing key; with `retire_others`, every older key stops verifying now."""
        key = new_signing_key(self._clock())
        self._metadata.add_signing_key(key)
        retired = self._metadata.retire_signing_keys(key.kid, self._clock()) if retire_others else []
        self._load()
        return key.kid, retired

    def sign(self, claims: dict[str, Any]) -> str:
        kid, private = self._current()
        payload = {**claims, "iss": self.issuer, "aud": AUDIENCE}
        return jwt.encode(payload, private[kid], algorithm=ALGORITHM, headers={"kid": kid})

    def knows(self, token: str) -> bool:
        """Whether the token claims to be signed by this installation (its issuer), unverified."""
        try:
            return jwt.decode(token, options={"verify_signature": False}).get("iss") == self.issuer
        except jwt.PyJWTError:
            return False

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a token this installation signed, or Unauthenticated saying why not."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("the token is malformed") from exc
        if header.get("alg") != ALGORITHM:
            raise Unauthenticated(f"tokens must be signed with {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthenticated("the token names no signing key")
        _, private = self._current()
        now = self._monotonic()
        if kid not in private and now - self._early_reload_at > UNKNOWN_KID_RELOAD_S:
            self._early_reload_at = now  # a made-up key id must not make every request read the store
            self._load()
            _, private = self._ring
        key = private.get(kid)
        if key is None:
            raise Unauthenticated("the token's signing key is unknown or retired")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key(),
                algorithms=[ALGORITHM],
                audience=AUDIENCE,
                issuer=self.issuer,
                leeway=CLOCK_SKEW,
                options={"require": REQUIRED_CLAIMS},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the token has expired; log in again") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"the token is not valid: {exc}") from exc
        return claims

    def jwks(self) -> dict[str, Any]:
        """The public keys that verify this installation's tokens (RFC 7517)."""
        items = list(self._current()[1].items())
        return {
            "keys": [
                {"kty": "OKP", "crv": "Ed25519", "x": _public_x(k.public_key()), "kid": kid}
                | {"use": "sig", "alg": ALGORITHM}
                for kid, k in items
            ]
        }
