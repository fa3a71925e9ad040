"""Mosquitto password and ACL files for gateways: each may publish only under its own tenant's site.

Topic contract (the MQTT connector subscribes to exactly these):

- Unified Namespace: ``{tenant}/{site}/...`` (ISA-95 tree, the enterprise is the tenant id).
- Sparkplug B 3.0: group id ``{tenant}:{site}``; a gateway publishes ``spBv1.0/{group}/{type}/...`` for
  NBIRTH, NDEATH, DBIRTH, DDEATH, NDATA and DDATA, and receives NCMD and DCMD under its group as well as
  the host application's ``spBv1.0/STATE/...``.

A gateway's MQTT username is ``{tenant}/{gateway}``: ``/`` cannot occur in ids, and unlike ``:`` it is legal
in the password file. The files contain only ``user`` blocks, no ``pattern`` lines and no anonymous access.
Mosquitto re-reads the password file and the ACL file when it receives SIGHUP: it disconnects clients whose
account is gone, and checks every later message of the others against the new ACL.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from leitstand.domain.assets import check_id
from leitstand.domain.errors import InputError

SPARKPLUG_NAMESPACE = "spBv1.0"
_SALT_BYTES = 12
_GATEWAY_PUBLISH = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA")
_GATEWAY_SUBSCRIBE = ("NCMD", "DCMD")
_MAX_TOPIC_BYTES = 65535


def mosquitto_password_hash(password: str, *, salt: bytes | None = None, iterations: int = 101) -> str:
    """Hash `password` in Mosquitto 2's ``$7$`` format (PBKDF2-HMAC-SHA512), as ``mosquitto_passwd`` does."""
    if salt is None:
        salt = secrets.token_bytes(_SALT_BYTES)
    if len(salt) != _SALT_BYTES:
        raise InputError(f"a Mosquitto password salt must be {_SALT_BYTES} bytes, not {len(salt)}")
    if iterations < 1:
        raise InputError(f"PBKDF2 iterations must be at least 1, not {iterations}")
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, dklen=64)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


@dataclass(frozen=True, slots=True)
class MqttAccount:
    """One broker login and the topic filters it may publish to and subscribe to."""

    username: str
    password_hash: str
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def sparkplug_group_id(tenant: str, site: str) -> str:
    """The Sparkplug group id of a tenant's site: ``{tenant}:{site}`` (ids contain no colon)."""
    return f"{check_id(tenant, 'tenant')}:{check_id(site, 'site')}"


def gateway_account(tenant: str, gateway: str, site: str, password_hash: str) -> MqttAccount:
    """The account of gateway `gateway` of `tenant`, confined to `site`'s UNS and Sparkplug topics."""
    check_id(tenant, "tenant")
    check_id(gateway, "gateway")
    check_id(site, "site")
    if tenant == SPARKPLUG_NAMESPACE:
        # Its UNS tree would overlap the Sparkplug namespace, e.g. site "STATE" would spoof the host's state.
        raise InputError(
            f"tenant id {tenant!r} is reserved for the Sparkplug namespace and cannot have gateways"
        )
    group = f"{SPARKPLUG_NAMESPACE}/{sparkplug_group_id(tenant, site)}"
    return MqttAccount(
        username=f"{tenant}/{gateway}",
        password_hash=password_hash,
        publish=(f"{tenant}/{site}/#", *(f"{group}/{kind}/#" for kind in _GATEWAY_PUBLISH)),
        subscribe=(*(f"{group}/{kind}/#" for kind in _GATEWAY_SUBSCRIBE), f"{SPARKPLUG_NAMESPACE}/STATE/#"),
    )


def platform_account(username: str, password_hash: str) -> MqttAccount:
    """The platform's ingest client: reads everything, writes host state and commands to edge nodes."""
    if "/" in username:
        raise InputError(f"platform MQTT username {username!r} must not contain '/', which marks gateways")
    return MqttAccount(
        username=username,
        password_hash=password_hash,
        publish=(
            f"{SPARKPLUG_NAMESPACE}/STATE/#",
            f"{SPARKPLUG_NAMESPACE}/+/NCMD/#",
            f"{SPARKPLUG_NAMESPACE}/+/DCMD/#",
        ),
        subscribe=("#",),
    )


def _has_control_char(text: str) -> bool:
    return any(ord(c) < 0x20 or ord(c) == 0x7F for c in text)


def _check_username(username: str) -> None:
    if not username:
        raise InputError("an MQTT username must not be empty")
    if _has_control_char(username):
        raise InputError(f"MQTT username {username!r} contains a control character (newline, NUL, ...)")
    if ":" in username:
        raise InputError(
            f"MQTT username {username!r} contains ':', which separates fields in the password file"
        )
    if username != username.strip() or username.startswith("#"):
        raise InputError(
            f"MQTT username {username!r} must not start with '#' or start or end with whitespace"
        )


def _check_password_hash(account: MqttAccount) -> None:
    value = account.password_hash
    if not value.startswith("$7$") or ":" in value or _has_control_char(value) or value != value.strip():
        raise InputError(f"password hash of MQTT user {account.username!r} is not a Mosquitto '$7$' hash")


def _check_topic_filter(topic: str, username: str) -> None:
    where = f"topic filter {topic!r} of MQTT user {username!r}"
    if not topic:
        raise InputError(f"{where} must not be empty")
    if _has_control_char(topic):
        raise InputError(f"{where} contains a control character (newline, NUL, ...)")
    if topic != topic.strip():
        raise InputError(f"{where} must not start or end with whitespace")
    if len(topic.encode()) > _MAX_TOPIC_BYTES:
        raise InputError(f"{where} is longer than {_MAX_TOPIC_BYTES} bytes")
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "+" in level and level != "+":
            raise InputError(f"{where}: '+' must be a whole topic level, as in 'a/+/b'")
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise InputError(f"{where}: '#' must be the whole last topic level, as in 'a/b/#'")


def _checked(accounts: Iterable[MqttAccount]) -> list[MqttAccount]:
    """Validate every account and return them sorted by username; duplicate usernames are refused."""
    result = sorted(accounts, key=lambda a: a.username)
    for i, account in enumerate(result):
        _check_username(account.username)
        if i and result[i - 1].username == account.username:
            raise InputError(f"MQTT username {account.username!r} occurs more than once")
        _check_password_hash(account)
        for topic in (*account.publish, *account.subscribe):
            _check_topic_filter(topic, account.username)
    return result


def render_password_file(accounts: Iterable[MqttAccount]) -> str:
    """The Mosquitto password file: one ``username:hash`` line per account, sorted by username."""
    return "".join(f"{a.username}:{a.password_hash}\n" for a in _checked(accounts))


def render_acl(accounts: Iterable[MqttAccount]) -> str:
    """The Mosquitto ACL file: one ``user`` block per account; anything not listed is denied."""
    blocks = []
    for account in _checked(accounts):
        lines = [f"user {account.username}"]
        lines += [f"topic write {topic}" for topic in account.publish]
        lines += [f"topic read {topic}" for topic in account.subscribe]
        blocks.append("\n".join(lines) + "\n")
    return (
        "# Generated by Leitstand; do not edit. Reload Mosquitto with SIGHUP after changes.\n\n"
        + "\n".join(blocks)
    )


def render_listener_config(port: int, password_file: Path, acl_file: Path, bind: str = "127.0.0.1") -> str:
    """A complete mosquitto.conf for one authenticated listener using the generated files."""
    if not 0 < port < 65536:
        raise InputError(f"listener port {port} is not between 1 and 65535")
    for value in (str(password_file), str(acl_file), bind):
        if _has_control_char(value) or not value.strip():
            raise InputError(f"{value!r} cannot be written into mosquitto.conf")
    return (
        "# Generated by Leitstand.\n"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"password_file {password_file}\n"
        f"acl_file {acl_file}\n"
        "persistence false\n"
        f"listener {port} {bind}\n"
    )


def _write_atomically(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_mosquitto_files(directory: Path, accounts: Iterable[MqttAccount]) -> tuple[Path, Path]:
    """Write ``passwd`` and ``acl`` (both mode 0600) into `directory` atomically; return their paths."""
    accounts = list(accounts)
    passwd_text, acl_text = render_password_file(accounts), render_acl(accounts)
    directory.mkdir(parents=True, exist_ok=True)
    passwd, acl = directory / "passwd", directory / "acl"
    _write_atomically(passwd, passwd_text)
    _write_atomically(acl, acl_text)
    return passwd, acl
