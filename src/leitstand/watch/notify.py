"""Alarm notifications: signed webhooks and a retained MQTT republish, fanned out by the Notifier.

No channel ever blocks its caller, the alarm engine: a webhook target has a bounded queue and a thread of
its own (a full queue drops its oldest notice), and MQTT publishes into paho's bounded queue, which its
network thread sends. Each notice is `AlarmNotice.document()` as JSON (see docs/watch/notifications.md).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import os
import random
import re
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from prometheus_client import Counter, Histogram
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator, model_validator

from leitstand.domain.errors import InputError
from leitstand.watch.model import PRIORITY_RANK, AlarmNotice, Priority

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Leitstand-Signature"
EVENT_ID_HEADER = "Leitstand-Event-Id"
_EVENT_NAMESPACE = uuid.UUID("2353d3e8-1249-4f6d-a8f1-2f03c0df3626")
_USER_AGENT = "Leitstand-Notifications/1"

Outcome = Literal["delivered", "retried", "failed", "dropped"]
NOTIFICATIONS = Counter(
    "leitstand_notifications_total", "Alarm notifications by channel and outcome", ["channel", "outcome"]
)
DELIVERY_SECONDS = Histogram(
    "leitstand_notification_delivery_seconds",
    "From notify to delivery (the receiver's 2xx, the broker's PUBACK), retries included",
    ["channel"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800),
)
for _channel in ("webhook", "mqtt"):  # every series exists from the start, at zero
    DELIVERY_SECONDS.labels(_channel)
    for _outcome in ("delivered", "retried", "failed", "dropped"):
        NOTIFICATIONS.labels(_channel, _outcome)


def encode(notice: AlarmNotice) -> bytes:
    """The JSON body of a notice; values JSON does not know (a numpy number in `explanation`) become text."""
    return orjson.dumps(notice.document(), default=str, option=orjson.OPT_NON_STR_KEYS)


def event_id(body: bytes) -> str:
    """The notice's id, derived from its content: the same notice has the same id in every attempt."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, body.decode()))


def _mac(secret: str, t: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes, t: int | None = None) -> str:
    """The `Leitstand-Signature` header value: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t." + body>`."""
    t = int(time.time()) if t is None else t
    return f"t={t},v1={_mac(secret, t, body)}"


def verify_signature(
    secret: str, header: str, body: bytes, now: float | None = None, tolerance_s: float = 300
) -> bool:
    """True if `header` signs exactly `body` with `secret` and its timestamp is within `tolerance_s` of
    `now` (a replayed old request fails). Several `v1=` entries are allowed (any one may match)."""
    t: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            if t is not None or not re.fullmatch(r"[0-9]{1,12}", value):
                return False
            t = int(value)
        elif key == "v1":
            signatures.append(value.encode(errors="replace"))
    if t is None or not signatures:
        return False
    if abs((time.time() if now is None else now) - t) > tolerance_s:
        return False
    expected = _mac(secret, t, body).encode()
    return any(hmac.compare_digest(expected, s) for s in signatures)


class RetryPolicy(BaseModel):
    """Exponential backoff with full jitter: the n-th retry waits a random time in [0, min(max_delay_s,
    initial_delay_s × factor^(n-1))]; `max_attempts` counts the first attempt too."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    initial_delay_s: float = Field(1.0, gt=0, le=3600)
    factor: float = Field(2.0, ge=1, le=10)
    max_delay_s: float = Field(60.0, gt=0, le=3600, description="Also caps a receiver's Retry-After.")
    max_attempts: int = Field(8, ge=1, le=100)

    def delay_s(self, retry: int, rng: random.Random) -> float:
        """How long to wait before retry number `retry` (1 for the first retry)."""
        ceiling = min(self.max_delay_s, self.initial_delay_s * self.factor ** min(retry - 1, 64))
        return rng.uniform(0, ceiling)


@dataclass(frozen=True, slots=True)
class WebhookTarget:
    """Where to POST notices, the secret that signs them, and which notices it wants (None: all)."""

    url: str
    secret: str = field(repr=False)
    min_priority: Priority = Priority.LOW
    actions: frozenset[str] | None = None
    tenants: frozenset[str] | None = None

    def accepts(self, notice: AlarmNotice) -> bool:
        return (
            PRIORITY_RANK[notice.priority] <= PRIORITY_RANK[self.min_priority]
            and (self.actions is None or notice.action in self.actions)
            and (self.tenants is None or notice.tenant in self.tenants)
        )


class Channel(Protocol):
    """A way out for notices: `submit` never blocks; `close` stops taking notices and delivers what is
    pending until `deadline` (time.monotonic()), `wait_closed` returns once that is done or at `deadline`."""

    channel: str

    def start(self) -> None: ...

    def submit(self, notice: AlarmNotice) -> None: ...

    def close(self, deadline: float) -> None: ...

    def wait_closed(self, deadline: float) -> None: ...


class _ChannelHealth:
    """A channel's notices by outcome, and its faults: each reason is logged once until the channel works
    again, then one line that it recovered."""

    def __init__(self, channel: str, where: str) -> None:
        self.channel, self.where = channel, where
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        self.counts: dict[str, int] = dict.fromkeys(("delivered", "retried", "failed", "dropped"), 0)

    def count(self, outcome: Outcome, n: int = 1) -> None:
        with self._lock:
            self.counts[outcome] += n
        NOTIFICATIONS.labels(self.channel, outcome).inc(n)

    def fault(self, code: str, message: str, level: int = logging.WARNING) -> None:
        with self._lock:
            first = code not in self._logged
            self._logged.add(code)
        if first:
            log.log(level, "%s %s: %s", self.channel, self.where, message)

    def recovered(self, message: str) -> bool:
        """Note that the channel works; True if it had been failing (then `message` is logged)."""
        with self._lock:
            was_failing = bool(self._logged)
            self._logged.clear()
        if was_failing:
            log.info("%s %s: %s", self.channel, self.where, message)
        return was_failing


def _retry_after_s(value: str | None) -> float | None:
    """Retry-After in seconds, from its delay-seconds or its HTTP-date form; None if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _public(url: str) -> str:
    """The URL without query and credentials, for logs (a query often carries a token)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"


_RETRYABLE_STATUS = frozenset({408, 429})


class WebhookSender:
    """Delivers the notices one target accepts, in order, from a thread of its own: signed POSTs, retried
    with backoff on connection errors, timeouts, 408, 429 and 5xx. Other answers are not retried."""

    channel = "webhook"

    def __init__(
        self,
        target: WebhookTarget,
        retry: RetryPolicy | None = None,
        timeout_s: float = 10.0,
        queue_size: int = 1000,
        rng: random.Random | None = None,
    ) -> None:
        self.target = target
        self.retry = retry or RetryPolicy()
        self.timeout_s = timeout_s
        self.queue_size = queue_size
        self._rng = rng or random.Random()
        self._queue: deque[tuple[AlarmNotice, float]] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = math.inf
        self._dropped_in_episode = 0
        self._thread: threading.Thread | None = None
        self.health = _ChannelHealth(self.channel, _public(target.url))

    @property
    def counts(self) -> dict[str, int]:
        """This target's notices by outcome (the Prometheus counter sums all targets)."""
        return dict(self.health.counts)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="notify-webhook", daemon=True)
            self._thread.start()

    def submit(self, notice: AlarmNotice) -> None:
        if not self.target.accepts(notice):
            return
        with self._cond:
            if self._closing:
                dropped, first = True, False
            else:
                dropped = len(self._queue) >= self.queue_size
                if dropped:
                    self._queue.popleft()
                    self._dropped_in_episode += 1
                first = self._dropped_in_episode == 1 and dropped
                self._queue.append((notice, time.monotonic()))
                self._cond.notify_all()
        if dropped:
            self.health.count("dropped")
        if first:
            log.warning(
                "webhook %s: queue full (%d notices); dropping the oldest until it drains",
                self.health.where,
                self.queue_size,
            )

    def close(self, deadline: float) -> None:
        with self._cond:
            self._closing = True
            self._deadline = min(self._deadline, deadline)
            self._cond.notify_all()

    def wait_closed(self, deadline: float) -> None:
        if self._thread is not None:
            self._thread.join(max(0.0, deadline - time.monotonic()))
            if self._thread.is_alive():
                log.warning("webhook %s: still sending after the stop timeout", self.health.where)
                return
            self._thread = None
        with self._cond:  # never started, or notices that came after the thread ended
            left = len(self._queue)
            self._queue.clear()
        if left:
            self.health.count("dropped", left)

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is pending for up to `timeout` seconds, then drop the rest (counted)."""
        deadline = time.monotonic() + timeout
        self.close(deadline)
        self.wait_closed(deadline)

    def _run(self) -> None:
        with httpx.Client(follow_redirects=False, headers={"User-Agent": _USER_AGENT}) as client:
            while True:
                with self._cond:
                    while not self._queue and not self._closing:
                        self._cond.wait()
                    if self._queue and time.monotonic() < self._deadline:
                        notice, since = self._queue.popleft()
                        drained = 0 if self._queue else self._dropped_in_episode
                        if drained:
                            self._dropped_in_episode = 0
                    else:
                        left = len(self._queue)
                        self._queue.clear()
                        break
                if drained:
                    log.info("webhook %s: queue drained; %d notices were dropped", self.health.where, drained)
                try:
                    self._deliver(client, notice, since)
                except Exception:  # a bug: the notice is lost, the sender goes on with the next one
                    self.health.count("failed")
                    log.exception("webhook %s: cannot deliver a notice", self.health.where)
        if left:
            self.health.count("dropped", left)
            log.warning(
                "webhook %s: %d notices not delivered before the stop timeout", self.health.where, left
            )

    def _deliver(self, client: httpx.Client, notice: AlarmNotice, since: float) -> None:
        body = encode(notice)
        headers = {"Content-Type": "application/json", EVENT_ID_HEADER: event_id(body)}
        for attempt in range(1, self.retry.max_attempts + 1):
            if attempt > 1:
                self.health.count("retried")
            retry, retry_after = self._attempt(client, body, headers, since)
            if not retry:
                return
            if attempt == self.retry.max_attempts:
                break
            delay = self.retry.delay_s(attempt, self._rng) if retry_after is None else retry_after
            if not self._pause(min(delay, self.retry.max_delay_s)):
                break
        self.health.count("failed")
        self.health.fault("gave_up", f"gave up on a notice after {attempt} attempts")

    def _attempt(
        self, client: httpx.Client, body: bytes, headers: dict[str, str], since: float
    ) -> tuple[bool, float | None]:
        """One signed POST: whether to retry, and after how long the receiver asked (Retry-After)."""
        headers = {**headers, SIGNATURE_HEADER: sign(self.target.secret, body)}
        timeout = min(self.timeout_s, max(0.05, self._deadline - time.monotonic()))
        try:
            with client.stream("POST", self.target.url, content=body, headers=headers, timeout=timeout) as r:
                status, retry_after = r.status_code, r.headers.get("Retry-After")
        except httpx.TimeoutException:
            self.health.fault("timeout", f"no answer within {timeout:.1f} s; retrying")
            return True, None
        except httpx.TransportError as exc:
            self.health.fault("unreachable", f"{type(exc).__name__}: {exc}; retrying")
            return True, None
        if 200 <= status < 300:
            DELIVERY_SECONDS.labels(self.channel).observe(time.monotonic() - since)
            self.health.count("delivered")
            self.health.recovered("delivering again")
            return False, None
        if status >= 500 or status in _RETRYABLE_STATUS:
            self.health.fault(f"http_{status}", f"answered {status}; retrying")
            return True, _retry_after_s(retry_after)
        self.health.count("failed")
        self.health.fault(
            f"http_{status}",
            f"answered {status}, which a retry will not change: check the URL and the receiver's "
            "configuration (notices it refuses are not retried)",
            logging.ERROR,
        )
        return False, None

    def _pause(self, seconds: float) -> bool:
        """Wait `seconds`; False (at once) if that would end after the stop deadline."""
        end = time.monotonic() + seconds
        with self._cond:
            while True:
                if end > self._deadline:
                    return False
                remaining = end - time.monotonic()
                if remaining <= 0:
                    return True
                self._cond.wait(remaining)


_ESCAPES = {"%": "%25", "/": "%2F", "+": "%2B", "#": "%23", "\x00": "%00"}


def topic_level(value: str) -> str:
    """`value` as one MQTT topic level: `/`, `+`, `#`, NUL and `%` are percent-encoded (`a/b` → `a%2Fb`)."""
    return "".join(_ESCAPES.get(c, c) for c in value)


def alarm_topic(topic_prefix: str, notice: AlarmNotice) -> str:
    """`{topic_prefix}/{tenant}/alarms/{asset_id}/{rule_id}`, each id one escaped level."""
    ids = (notice.tenant, "alarms", notice.asset_id, notice.rule_id)
    return "/".join((topic_prefix, *(topic_level(i) for i in ids)))


def _check_topic_prefix(prefix: str) -> str:
    if not prefix or prefix.startswith(("/", "$")) or prefix.endswith("/"):
        raise ValueError(f"topic_prefix {prefix!r}: one or more levels, not starting with '/' or '$'")
    if any(c in prefix for c in "+#\x00"):
        raise ValueError(f"topic_prefix {prefix!r}: no MQTT wildcards ('+', '#') or NUL")
    return prefix


class MqttRepublisher:
    """Publishes each notice retained at QoS 1 to its alarm's topic, so a subscriber sees every alarm's
    current state as soon as it subscribes. While the broker is away paho keeps up to `max_queued`
    notices (sent on reconnect); beyond that, new notices are dropped and counted."""

    channel = "mqtt"

    def __init__(
        self,
        host: str,
        port: int = 1883,
        topic_prefix: str = "leitstand",
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
        tls: bool = False,
        ca_file: Path | str | None = None,
        client_id: str | None = None,
        max_queued: int = 10_000,
        keepalive_s: int = 30,
    ) -> None:
        self.topic_prefix = _check_topic_prefix(topic_prefix)
        self.qos = qos
        self._where = f"{host}:{port}"
        self._host, self._port, self._keepalive_s = host, port, keepalive_s
        self._cond = threading.Condition()
        self._pending: dict[int, float] = {}  # message id → when it was published (monotonic)
        self._early: dict[int, ReasonCode] = {}  # acknowledged before `publish` returned its id
        self._closing = False
        self._started = False
        self.health = _ChannelHealth(self.channel, self._where)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"leitstand-notify-{uuid.uuid4().hex[:12]}",
            protocol=MQTTProtocolVersion.MQTTv5,
        )
        client.max_queued_messages_set(max_queued)
        if username is not None:
            client.username_pw_set(username, password)
        if tls:
            if ca_file is not None and not os.access(ca_file, os.R_OK):
                raise InputError(f"ca_file {ca_file} cannot be read")
            client.tls_set(ca_certs=str(ca_file) if ca_file else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_connect_fail = self._connect_failed
        client.on_publish = self._published
        self._client = client

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.health.counts)

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._client.connect_async(self._host, self._port, self._keepalive_s)
            self._client.loop_start()

    def submit(self, notice: AlarmNotice) -> None:
        if self._closing:
            self.health.count("dropped")
            return
        body = encode(notice)
        properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        properties.ContentType = "application/json"
        properties.UserProperty = ("event_id", event_id(body))
        since = time.monotonic()
        try:
            info = self._client.publish(
                alarm_topic(self.topic_prefix, notice), body, self.qos, True, properties
            )
        except ValueError as exc:  # paho's refusal of a topic or payload
            self.health.count("failed")
            self.health.fault("invalid", f"cannot publish: {exc}", logging.ERROR)
            return
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            self.health.count("dropped")
            self.health.fault("queue_full", "paho's queue is full; dropping new notices until it drains")
            return
        if self.qos == 0:  # no acknowledgement will come; a notice published while away is lost
            self.health.count("delivered" if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS else "dropped")
            return
        with self._cond:
            reason = self._early.pop(info.mid, None)
            if reason is None:
                self._pending[info.mid] = since
        if reason is not None:
            self._acknowledged(reason, since)

    def close(self, deadline: float) -> None:
        self._closing = True

    def wait_closed(self, deadline: float) -> None:
        with self._cond:
            while self._pending and (remaining := deadline - time.monotonic()) > 0:
                self._cond.wait(remaining)
            left = len(self._pending)
            self._pending.clear()
        if left:
            self.health.count("dropped", left)
            log.warning("mqtt %s: %d notices not acknowledged before the stop timeout", self._where, left)
        if self._started:
            self._client.disconnect()
            self._client.loop_stop()
        self._client._reset_sockets()  # paho leaves its wake-up socket pair to the garbage collector

    def stop(self, timeout: float = 10.0) -> None:
        """Wait up to `timeout` seconds for the broker to acknowledge what is pending, then disconnect."""
        deadline = time.monotonic() + timeout
        self.close(deadline)
        self.wait_closed(deadline)

    def _acknowledged(self, reason: ReasonCode, since: float) -> None:
        if reason.is_failure:  # MQTT 5: e.g. Not authorized (0x87) when the ACL forbids the topic
            self.health.count("failed")
            self.health.fault(
                f"puback_{reason.value}", f"the broker refused a notice: {reason}", logging.ERROR
            )
            return
        DELIVERY_SECONDS.labels(self.channel).observe(time.monotonic() - since)
        self.health.count("delivered")

    # paho callbacks (its network thread) -----------------------------------------------------------

    def _published(self, _c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        if self.qos == 0:  # written to the socket; nothing to wait for
            return
        with self._cond:
            since = self._pending.pop(mid, None)
            if since is None:
                self._early[mid] = reason
            self._cond.notify_all()
        if since is not None:
            self._acknowledged(reason, since)

    def _connected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:  # bad credentials or client id: paho keeps trying, but a human must act
            self.health.fault("refused", f"the broker refused the connection: {reason}", logging.ERROR)
        elif not self.health.recovered("connected again"):
            log.info("mqtt %s: connected", self._where)

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if not self._closing:
            self.health.fault("disconnected", f"disconnected ({reason}); reconnecting")

    def _connect_failed(self, _c: mqtt.Client, _u: Any) -> None:
        self.health.fault("unreachable", "cannot reach the broker; retrying")


class WebhookConfig(BaseModel):
    """One webhook target: where, the signing secret, which notices, and how hard to try."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="http:// or https:// URL the notices are POSTed to.")
    secret: SecretStr = Field(description="Signs every request (HMAC-SHA256); at least 16 characters.")
    min_priority: Priority = Field(Priority.LOW, description="Only notices of this priority or higher.")
    actions: frozenset[str] | None = Field(None, description="Only these actions (default: all).")
    tenants: frozenset[str] | None = Field(None, description="Only these tenants' notices (default: all).")
    timeout_s: float = Field(10.0, gt=0, le=120, description="Per attempt: connect, send, first answer.")
    queue_size: int = Field(1000, ge=1, le=1_000_000, description="Pending notices; beyond: oldest dropped.")
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host")
        return url

    @field_validator("secret")
    @classmethod
    def _long_secret(cls, secret: SecretStr) -> SecretStr:
        if len(secret.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return secret

    @field_validator("actions", "tenants")
    @classmethod
    def _not_empty(cls, values: frozenset[str] | None, info: ValidationInfo) -> frozenset[str] | None:
        if values is not None and not values:
            raise ValueError("an empty set would let nothing through; leave it out to take all")
        names = values if info.field_name == "actions" and values else ()
        for value in names:
            if not re.fullmatch(r"[a-z][a-z_]{0,31}", value):
                raise ValueError(f"{value!r} is not an action name (e.g. 'activated')")
        return values

    def sender(self) -> WebhookSender:
        target = WebhookTarget(
            self.url, self.secret.get_secret_value(), self.min_priority, self.actions, self.tenants
        )
        return WebhookSender(target, self.retry, self.timeout_s, self.queue_size)


class MqttNotifyConfig(BaseModel):
    """The broker that alarm notices are republished to, retained, one topic per alarm."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    topic_prefix: str = Field("leitstand", max_length=200, description="Topics: <prefix>/<tenant>/alarms/...")
    qos: Literal[0, 1] = 1
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = Field(None, description="CA bundle for TLS; default: the system's trusted CAs.")
    client_id: str | None = Field(None, min_length=1, max_length=128, description="Default: random.")
    max_queued: int = Field(10_000, ge=1, le=1_000_000, description="Notices kept while the broker is away.")
    keepalive_s: int = Field(30, ge=5, le=65535)

    @field_validator("topic_prefix")
    @classmethod
    def _topic_prefix(cls, prefix: str) -> str:
        return _check_topic_prefix(prefix)

    @model_validator(mode="after")
    def _tls_pieces(self) -> MqttNotifyConfig:
        if self.ca_file is not None and not self.tls:
            raise ValueError("ca_file is set but tls is false")
        if self.password is not None and self.username is None:
            raise ValueError("a password needs a username")
        return self

    def republisher(self) -> MqttRepublisher:
        return MqttRepublisher(
            self.host,
            self.port,
            self.topic_prefix,
            self.qos,
            self.username,
            self.password.get_secret_value() if self.password else None,
            self.tls,
            self.ca_file,
            self.client_id,
            self.max_queued,
            self.keepalive_s,
        )


class NotificationsConfig(BaseModel):
    """All notification channels of an installation (what the settings embed)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhooks: tuple[WebhookConfig, ...] = ()
    mqtt: MqttNotifyConfig | None = None


class Notifier:
    """Fans each notice out to every channel. `notify` never blocks and never raises."""

    def __init__(self, channels: Sequence[Channel]) -> None:
        self.channels = tuple(channels)

    @classmethod
    def from_config(cls, config: NotificationsConfig) -> Notifier:
        channels: list[Channel] = [w.sender() for w in config.webhooks]
        if config.mqtt is not None:
            channels.append(config.mqtt.republisher())
        return cls(channels)

    def start(self) -> None:
        for channel in self.channels:
            channel.start()

    def notify(self, notice: AlarmNotice) -> None:
        for channel in self.channels:
            try:
                channel.submit(notice)
            except Exception:  # a fault in one channel must neither reach the alarm engine nor the others
                NOTIFICATIONS.labels(channel.channel, "failed").inc()
                log.exception("%s: cannot take a notice", channel.channel)

    def stop(self, timeout: float = 10.0) -> None:
        """Deliver what is pending in all channels at once for up to `timeout` seconds, then stop them."""
        deadline = time.monotonic() + timeout
        for channel in self.channels:
            channel.close(deadline)
        for channel in self.channels:
            channel.wait_closed(deadline)
