"""Alarm notifications over real wires: an HTTP receiver on loopback and the machine's mosquitto broker."""

from __future__ import annotations

import itertools
import json
import random
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from prometheus_client import REGISTRY
from pydantic import ValidationError

from leitstand.watch.model import AlarmNotice, AlarmState, Priority
from leitstand.watch.notify import (
    EVENT_ID_HEADER,
    SIGNATURE_HEADER,
    MqttNotifyConfig,
    MqttRepublisher,
    NotificationsConfig,
    Notifier,
    RetryPolicy,
    WebhookConfig,
    WebhookSender,
    WebhookTarget,
    alarm_topic,
    sign,
    topic_level,
    verify_signature,
)
from tests.http_receiver import Receiver, receiving

SECRET = "s3cret-of-sixteen+"
BROKER = ("127.0.0.1", 1883)
WAIT_S = 10.0


def make_notice(alarm_id: int = 7, **changes: object) -> AlarmNotice:
    fields: dict[str, object] = {
        "tenant": "acme",
        "alarm_id": alarm_id,
        "rule_id": "spindle-overheat",
        "asset_id": "press-1",
        "asset_path": "acme/plant-1/body/line-1/press-1",
        "priority": Priority.HIGH,
        "state": AlarmState.UNACKNOWLEDGED,
        "action": "activated",
        "at": datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC),
        "message": "Spindle temperature 81.5 °C above its limit of 80 °C",
        "value": 81.5,
        "explanation": {"signal": "spindle_temperature", "limit": 80.0},
    }
    fields.update(changes)
    return AlarmNotice(**fields)  # type: ignore[arg-type]


def wait_until(condition: Callable[[], bool], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def metric(channel: str, outcome: str) -> float:
    labels = {"channel": channel, "outcome": outcome}
    return REGISTRY.get_sample_value("leitstand_notifications_total", labels) or 0.0


class Ceiling(random.Random):
    """Backoff without chance: every jittered delay is its upper bound, so the delays are known."""

    def uniform(self, a: float, b: float) -> float:
        return b


# An HTTP receiver on loopback ---------------------------------------------------------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as state:
        yield state


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(WAIT_S)
    for conn in accepted:
        conn.close()
    listener.close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


MakeSender = Callable[..., WebhookSender]


@pytest.fixture
def senders() -> Iterator[MakeSender]:
    """Makes started senders and stops them at the end."""
    made: list[WebhookSender] = []

    def make(url: str, retry: RetryPolicy | None = None, **kwargs: object) -> WebhookSender:
        target = WebhookTarget(url, SECRET, **kwargs.pop("filters", {}))  # type: ignore[arg-type]
        sender = WebhookSender(target, retry, rng=Ceiling(), **kwargs)  # type: ignore[arg-type]
        sender.start()
        made.append(sender)
        return sender

    yield make
    for sender in made:
        sender.stop(timeout=2)


FAST = RetryPolicy(initial_delay_s=0.01, factor=2, max_delay_s=0.05, max_attempts=4)


# Webhooks ---------------------------------------------------------------------------------------------


def test_a_webhook_receives_the_notice_document_signed_and_identified(
    receiver: Receiver, senders: MakeSender
) -> None:
    sender = senders(receiver.url)
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["delivered"] == 1)
    (request,) = receiver.requests
    assert json.loads(request.body) == make_notice().document()
    assert request.headers["Content-Type"] == "application/json"
    assert uuid.UUID(request.headers[EVENT_ID_HEADER])
    assert verify_signature(SECRET, request.headers[SIGNATURE_HEADER], request.body)


def test_a_signature_fails_with_a_wrong_secret_a_tampered_body_or_an_old_timestamp(
    receiver: Receiver, senders: MakeSender
) -> None:
    sender = senders(receiver.url)
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["delivered"] == 1)
    (request,) = receiver.requests
    header, body = request.headers[SIGNATURE_HEADER], request.body
    t = int(header.split(",")[0].removeprefix("t="))
    assert verify_signature(SECRET, header, body, now=t + 299)
    assert not verify_signature("another-secret-of-16", header, body)
    assert not verify_signature(SECRET, header, body.replace(b"81.5", b"18.5"))
    assert not verify_signature(SECRET, header, body, now=t + 301)
    assert not verify_signature(SECRET, header, body, now=t - 301)


@pytest.mark.parametrize(
    "header",
    ["", "v1=00", "t=1700000000", "t=abc,v1=00", "t=1,t=2,v1=00", "t=١٧٠٠٠٠٠٠٠٠,v1=00", "nonsense"],
)
def test_a_malformed_signature_header_does_not_verify(header: str) -> None:
    assert not verify_signature(SECRET, header, b"{}", now=1_700_000_000)


def test_any_of_several_signatures_may_match_as_during_a_secret_rotation() -> None:
    body = b'{"alarm_id": 1}'
    old, new = sign("old-secret-0123456789", body, 1_700_000_000), sign(SECRET, body, 1_700_000_000)
    header = f"{new},{old.split(',')[1]}"
    assert verify_signature("old-secret-0123456789", header, body, now=1_700_000_000)
    assert verify_signature(SECRET, header, body, now=1_700_000_000)


def test_503s_are_retried_with_growing_delays_under_one_event_id(
    receiver: Receiver, senders: MakeSender
) -> None:
    receiver.answers = [(503, {})] * 3
    before = metric("webhook", "retried")
    sender = senders(receiver.url, RetryPolicy(initial_delay_s=0.05, factor=3, max_delay_s=5, max_attempts=5))
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["delivered"] == 1)
    requests = receiver.requests
    assert len(requests) == 4
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests)]
    for gap, planned in zip(gaps, (0.05, 0.15, 0.45), strict=True):
        assert gap >= planned * 0.9, gaps
    assert gaps[0] < gaps[1] < gaps[2]
    assert len({r.headers[EVENT_ID_HEADER] for r in requests}) == 1
    assert all(verify_signature(SECRET, r.headers[SIGNATURE_HEADER], r.body) for r in requests)
    assert sender.counts == {"delivered": 1, "retried": 3, "failed": 0, "dropped": 0}
    assert metric("webhook", "retried") - before == 3


def test_a_429_waits_as_long_as_retry_after_says(receiver: Receiver, senders: MakeSender) -> None:
    receiver.answers = [(429, {"Retry-After": "1"})]
    sender = senders(receiver.url, RetryPolicy(initial_delay_s=0.01, max_delay_s=5))
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["delivered"] == 1)
    first, second = receiver.requests
    assert 0.95 <= second.at - first.at < 3


def test_retry_after_is_capped_by_the_max_delay(receiver: Receiver, senders: MakeSender) -> None:
    receiver.answers = [(503, {"Retry-After": "30"})]
    sender = senders(receiver.url, RetryPolicy(initial_delay_s=0.01, max_delay_s=0.2))
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["delivered"] == 1)
    first, second = receiver.requests
    assert 0.18 <= second.at - first.at < 1.5


def test_a_400_is_not_retried(receiver: Receiver, senders: MakeSender) -> None:
    receiver.answers = [(400, {})] * 3
    before = metric("webhook", "failed")
    sender = senders(receiver.url, FAST)
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["failed"] == 1)
    time.sleep(0.2)  # longer than every retry delay of FAST together
    assert len(receiver.requests) == 1
    assert sender.counts == {"delivered": 0, "retried": 0, "failed": 1, "dropped": 0}
    assert metric("webhook", "failed") - before == 1


def test_it_gives_up_after_max_attempts_and_counts_it(receiver: Receiver, senders: MakeSender) -> None:
    receiver.answers = [(503, {})] * FAST.max_attempts
    before = metric("webhook", "failed")
    sender = senders(receiver.url, FAST)
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["failed"] == 1)
    assert len(receiver.requests) == FAST.max_attempts
    assert sender.counts == {"delivered": 0, "retried": 3, "failed": 1, "dropped": 0}
    assert metric("webhook", "failed") - before == 1
    sender.submit(make_notice(8))  # the next notice is delivered as usual
    wait_until(lambda: sender.counts["delivered"] == 1)


def test_an_unreachable_receiver_is_retried_then_given_up(senders: MakeSender) -> None:
    sender = senders(f"http://127.0.0.1:{closed_port()}/", FAST)
    sender.submit(make_notice())
    wait_until(lambda: sender.counts["failed"] == 1)
    assert sender.counts["retried"] == FAST.max_attempts - 1


def test_a_full_queue_drops_the_oldest_and_notify_stays_fast(receiver: Receiver, senders: MakeSender) -> None:
    receiver.hold = True
    before = metric("webhook", "dropped")
    sender = senders(receiver.url, queue_size=3)
    sender.submit(make_notice(0))
    wait_until(lambda: len(receiver.requests) == 1)  # notice 0 is on the wire, the receiver holds it
    started = time.monotonic()
    for alarm_id in range(1, 51):
        sender.submit(make_notice(alarm_id))
    assert time.monotonic() - started < 0.5
    assert sender.counts["dropped"] == 47
    assert metric("webhook", "dropped") - before == 47
    receiver.release.set()
    wait_until(lambda: sender.counts["delivered"] == 4)
    assert [d["alarm_id"] for d in receiver.documents()] == [0, 48, 49, 50]


def test_a_receiver_that_never_answers_holds_up_neither_notify_nor_stop(silent_port: int) -> None:
    retry = RetryPolicy(initial_delay_s=0.01, max_delay_s=0.05, max_attempts=2)
    target = WebhookTarget(f"http://127.0.0.1:{silent_port}/", SECRET)
    sender = WebhookSender(target, retry, timeout_s=0.2, queue_size=2)
    sender.start()
    started = time.monotonic()
    for alarm_id in range(20):
        sender.submit(make_notice(alarm_id))
    assert time.monotonic() - started < 0.5
    wait_until(lambda: sender.counts["failed"] >= 1)
    started = time.monotonic()
    sender.stop(timeout=0.5)
    assert time.monotonic() - started < 1.5
    counts = sender.counts
    assert counts["delivered"] == 0
    assert counts["dropped"] >= 20 - 2 - 2  # at most the queue and two notices on the wire got through
    assert counts["failed"] + counts["dropped"] == 20


def test_a_target_takes_only_the_priorities_actions_and_tenants_it_asks_for() -> None:
    target = WebhookTarget(
        "http://127.0.0.1/", SECRET, Priority.HIGH, frozenset({"activated"}), frozenset({"acme"})
    )
    assert target.accepts(make_notice(priority=Priority.URGENT))
    assert target.accepts(make_notice(priority=Priority.HIGH))
    assert not target.accepts(make_notice(priority=Priority.MEDIUM))
    assert not target.accepts(make_notice(action="cleared"))
    assert not target.accepts(make_notice(tenant="rival"))
    assert WebhookTarget("http://127.0.0.1/", SECRET).accepts(make_notice(priority=Priority.LOW))


def test_backoff_has_full_jitter_below_a_growing_capped_ceiling() -> None:
    policy = RetryPolicy(initial_delay_s=1, factor=2, max_delay_s=10)
    rng = random.Random(1)
    for retry, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 10), (30, 10), (1000, 10)):
        delays = [policy.delay_s(retry, rng) for _ in range(200)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # the whole range is used
        assert min(delays) < ceiling * 0.2


# MQTT --------------------------------------------------------------------------------------------------


@pytest.fixture
def prefix() -> Iterator[str]:
    """A topic prefix of this test alone; its retained messages are removed at the end."""
    prefix = f"leitstand-test/{uuid.uuid4().hex}"
    yield prefix
    topics = [t for t, _ in subscribe_retained(f"{prefix}/#", expect=0, wait_s=0.5)]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"leitstand-test-clean-{uuid.uuid4().hex}")
    client.connect(*BROKER)
    client.loop_start()
    infos = [client.publish(topic, b"", qos=1, retain=True) for topic in topics]
    for info in infos:
        info.wait_for_publish(WAIT_S)
    client.disconnect()
    client.loop_stop()
    client._reset_sockets()
    assert not subscribe_retained(f"{prefix}/#", expect=0, wait_s=0.3)


def subscribe_retained(topic_filter: str, expect: int, wait_s: float = WAIT_S) -> list[tuple[str, bytes]]:
    """The retained messages a new subscriber to `topic_filter` receives (waits for `expect` of them,
    or `wait_s` when `expect` is 0)."""
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"leitstand-test-sub-{uuid.uuid4().hex}",
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    client.on_connect = lambda c, *_: c.subscribe(topic_filter, qos=1)
    client.on_subscribe = lambda *_: subscribed.set()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.retain and message.payload:
            got.append((message.topic, bytes(message.payload)))

    client.on_message = on_message
    client.connect(*BROKER)
    client.loop_start()
    try:
        assert subscribed.wait(WAIT_S)
        if expect:
            wait_until(lambda: len(got) >= expect, wait_s)
        else:
            time.sleep(wait_s)
    finally:
        client.disconnect()
        client.loop_stop()
        client._reset_sockets()
    return got


def test_a_subscriber_that_comes_later_receives_each_alarm_retained(prefix: str) -> None:
    republisher = MqttRepublisher(*BROKER, topic_prefix=prefix, client_id=f"leitstand-test-{uuid.uuid4()}")
    republisher.start()
    first = make_notice(1)
    cleared = make_notice(1, state=AlarmState.NORMAL, action="cleared", value=79.0)
    other = make_notice(2, asset_id="press-2")
    for notice in (first, cleared, other):
        republisher.submit(notice)
    republisher.stop(timeout=WAIT_S)  # waits for the broker's acknowledgements
    assert republisher.counts == {"delivered": 3, "retried": 0, "failed": 0, "dropped": 0}

    got = dict(subscribe_retained(f"{prefix}/#", expect=2))
    assert got.keys() == {
        f"{prefix}/acme/alarms/press-1/spindle-overheat",
        f"{prefix}/acme/alarms/press-2/spindle-overheat",
    }
    assert json.loads(got[alarm_topic(prefix, cleared)]) == cleared.document()  # the alarm's latest state
    assert json.loads(got[alarm_topic(prefix, other)]) == other.document()


def test_ids_with_mqtt_wildcards_or_slashes_stay_one_topic_level(prefix: str) -> None:
    assert topic_level("a/b+c#d%e") == "a%2Fb%2Bc%23d%25e"
    notice = make_notice(asset_id="press/1", rule_id="temp+#")
    assert alarm_topic("leitstand", notice) == "leitstand/acme/alarms/press%2F1/temp%2B%23"
    republisher = MqttRepublisher(*BROKER, topic_prefix=prefix)
    republisher.start()
    republisher.submit(notice)
    republisher.stop(timeout=WAIT_S)
    ((topic, payload),) = subscribe_retained(f"{prefix}/acme/alarms/+/+", expect=1)
    assert topic == f"{prefix}/acme/alarms/press%2F1/temp%2B%23"
    assert json.loads(payload)["asset_id"] == "press/1"


def test_while_the_broker_is_away_notices_queue_up_to_the_bound_then_are_dropped() -> None:
    before = metric("mqtt", "dropped")
    republisher = MqttRepublisher("127.0.0.1", closed_port(), max_queued=3)
    republisher.start()
    started = time.monotonic()
    for alarm_id in range(5):
        republisher.submit(make_notice(alarm_id))
    assert time.monotonic() - started < 0.5
    assert republisher.counts["dropped"] == 2
    republisher.stop(timeout=0.2)  # the three queued are never acknowledged
    assert republisher.counts == {"delivered": 0, "retried": 0, "failed": 0, "dropped": 5}
    assert metric("mqtt", "dropped") - before == 5


# The Notifier and its configuration --------------------------------------------------------------------


def test_the_notifier_fans_out_to_every_channel_and_flushes_on_stop(receiver: Receiver, prefix: str) -> None:
    config = NotificationsConfig.model_validate(
        {
            "webhooks": [
                {"url": receiver.url, "secret": SECRET},
                {"url": receiver.url, "secret": SECRET, "min_priority": "urgent"},
            ],
            "mqtt": {"port": BROKER[1], "topic_prefix": prefix},
        }
    )
    notifier = Notifier.from_config(config)
    notifier.start()
    notifier.notify(make_notice())  # high: the second webhook does not want it
    notifier.stop(timeout=WAIT_S)
    assert receiver.documents() == [make_notice().document()]
    ((_, payload),) = subscribe_retained(f"{prefix}/#", expect=1)
    assert json.loads(payload) == make_notice().document()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"url": "ftp://example.com/x"}, "http"),
        ({"url": "https:///nohost"}, "host"),
        ({"secret": "too-short"}, "16 characters"),
        ({"actions": []}, "empty"),
        ({"actions": ["Activated!"]}, "action"),
        ({"retry": {"max_attempts": 0}}, "max_attempts"),
        ({"retry": {"factor": 0.5}}, "factor"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_a_webhook_config_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        WebhookConfig.model_validate({"url": "https://example.com/hook", "secret": SECRET, **changes})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"topic_prefix": "a/+/b"}, "wildcards"),
        ({"topic_prefix": "$SYS"}, "prefix"),
        ({"topic_prefix": "plant/"}, "prefix"),
        ({"qos": 2}, "qos"),
        ({"ca_file": "/etc/ssl/ca.pem"}, "tls"),
        ({"password": "pw"}, "username"),
    ],
)
def test_an_mqtt_config_refuses(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        MqttNotifyConfig.model_validate(changes)


def test_the_secret_does_not_show_in_a_config_or_target_repr() -> None:
    config = WebhookConfig(url="https://example.com/hook", secret=SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in repr(config.sender().target)


def test_values_json_does_not_know_are_sent_as_text(receiver: Receiver, senders: MakeSender) -> None:
    when = datetime(2025, 1, 1, tzinfo=UTC)
    sender = senders(receiver.url)
    sender.submit(make_notice(explanation={"since": when, 3: Decimal("1.5"), "band": {1, 2}}))
    wait_until(lambda: sender.counts["delivered"] == 1)
    (document,) = receiver.documents()
    assert document["explanation"] == {"since": when.isoformat(), "3": "1.5", "band": "{1, 2}"}
