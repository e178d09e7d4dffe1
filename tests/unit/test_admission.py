"""Admission: room for one more stream, decided on counts the fan-out reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus

from ssegate.admission import Admission, AdmissionLimits, Admitted, Deferred
from ssegate.config.schema import RouteConfig
from ssegate.fanout.group import GroupKey
from ssegate.fanout.start import StartAt
from ssegate.kafka.eventid import IdForm
from ssegate.rejection import Rejection
from ssegate.routing import StartPolicy
from ssegate.routing.router import compile_route
from ssegate.sse.stream import CloseReason
from ssegate.subscription import Subscription

ROUTE = compile_route(0, RouteConfig(path="/t/{name}", topic="${params.name}"))
LIMITS = AdmissionLimits(max_streams=10, max_streams_per_ip=2, max_topics=2, max_loop_lag=0.5)


@dataclass
class FakeFanout:
    open_streams: int = 0
    topics: set[str] = field(default_factory=set)
    failed: dict[str, float] = field(default_factory=dict)

    @property
    def topics_read(self) -> int:
        return len(self.topics)

    def reads(self, topic: str) -> bool:
        return topic in self.topics

    def retry_after(self, topic: str) -> float | None:
        return self.failed.get(topic)


@dataclass
class FakeLag:
    lag: float = 0.0


def subscription(topic: str = "a", client_ip: str = "192.0.2.1") -> Subscription:
    key = GroupKey("/t/{name}", (), IdForm.ETAG)
    return Subscription(ROUTE, topic, key, StartAt(StartPolicy.EARLIEST), client_ip)


def admission(
    fanout: FakeFanout, lag: FakeLag | None = None, limits: AdmissionLimits = LIMITS
) -> Admission:
    return Admission(limits, fanout, lag or FakeLag(), jitter=lambda: 0.99)


def test_a_stream_is_admitted_and_released_once() -> None:
    gate = admission(FakeFanout(topics={"a"}))
    admitted = gate.admit(subscription())
    assert isinstance(admitted, Admitted)
    assert admitted.subscription == subscription()
    assert gate.streams_per_ip == {"192.0.2.1": 1}
    admitted.release(CloseReason.CLIENT_CLOSED)
    admitted.release(CloseReason.CLIENT_CLOSED)  # a second call changes nothing
    assert gate.streams_per_ip == {}


def test_each_address_has_its_own_allowance() -> None:
    gate = admission(FakeFanout(topics={"a"}))
    first = gate.admit(subscription())
    assert isinstance(first, Admitted)
    assert isinstance(gate.admit(subscription()), Admitted)
    assert gate.admit(subscription()) == Rejection(
        HTTPStatus.TOO_MANY_REQUESTS,
        "192.0.2.1 holds its limit of 2 streams",
        (("Retry-After", "1"),),
    )
    assert isinstance(gate.admit(subscription(client_ip="192.0.2.2")), Admitted)
    first.release(CloseReason.SLOW_CLIENT)
    assert isinstance(gate.admit(subscription()), Admitted)


def test_a_full_process_answers_503_with_a_jittered_retry_after() -> None:
    fanout = FakeFanout(open_streams=10, topics={"a"})
    assert admission(fanout).admit(subscription()) == Rejection(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "this server holds its limit of 10 streams; try again later",
        (("Retry-After", "4"),),
    )
    low = Admission(LIMITS, fanout, FakeLag(), jitter=lambda: 0.0).admit(subscription())
    assert isinstance(low, Rejection)
    assert low.headers == (("Retry-After", "2"),)


def test_a_late_loop_refuses_new_streams() -> None:
    lag = FakeLag(0.6)
    gate = admission(FakeFanout(topics={"a"}), lag)
    assert gate.admit(subscription()) == Rejection(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "this server is overloaded; try again later",
        (("Retry-After", "4"),),
    )
    lag.lag = 0.4
    assert isinstance(gate.admit(subscription()), Admitted)


def test_loop_lag_zero_turns_the_check_off() -> None:
    limits = AdmissionLimits(max_streams=10, max_streams_per_ip=0, max_topics=2, max_loop_lag=0)
    gate = admission(FakeFanout(topics={"a"}), FakeLag(30.0), limits)
    assert isinstance(gate.admit(subscription()), Admitted)


def test_a_new_topic_beyond_max_topics_is_429_but_a_read_one_is_not() -> None:
    gate = admission(FakeFanout(topics={"a", "b"}))
    assert gate.admit(subscription("c")) == Rejection(
        HTTPStatus.TOO_MANY_REQUESTS,
        "this server reads its limit of 2 topics",
        (("Retry-After", "1"),),
    )
    assert isinstance(gate.admit(subscription("b")), Admitted)


def test_a_topic_whose_reader_failed_for_good_says_when_to_come_back() -> None:
    gate = admission(FakeFanout(topics=set(), failed={"a": 41.2}))
    assert gate.admit(subscription("a")) == Rejection(
        HTTPStatus.SERVICE_UNAVAILABLE,
        "topic 'a' cannot be read now; try again later",
        (("Retry-After", "42"),),
    )
    due = admission(FakeFanout(failed={"a": 0.0})).admit(subscription("a"))
    assert isinstance(due, Rejection)
    assert due.headers == (("Retry-After", "1"),)


def resumed(route_topic: str = "a", client_ip: str = "192.0.2.1") -> Subscription:
    key = GroupKey("/t/{name}", (), IdForm.ETAG)
    return Subscription(ROUTE, route_topic, key, StartAt(StartPolicy.EARLIEST, {0: 5}), client_ip)


def test_a_resume_into_a_full_process_is_deferred_not_refused() -> None:
    gate = admission(FakeFanout(open_streams=10, topics={"a"}))
    assert gate.admit(resumed()) == Deferred(
        resumed(), 4000, "this server holds its limit of 10 streams; try again later"
    )


def test_a_resume_of_a_failed_topic_comes_back_when_it_is_tried_again() -> None:
    gate = admission(FakeFanout(failed={"a": 41.2}))
    deferred = gate.admit(resumed())
    assert isinstance(deferred, Deferred)
    assert deferred.retry_ms == 42_000


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_resumes_are_budgeted_only_while_the_route_sheds_load() -> None:
    clock = FakeClock()
    limits = AdmissionLimits(
        max_streams=100, max_streams_per_ip=0, max_topics=2, max_loop_lag=0, reconnect_budget=2
    )
    gate = Admission(limits, FakeFanout(topics={"a"}), None, jitter=lambda: 0.0, clock=clock)
    # Not shedding: any number of resumes.
    admitted = [gate.admit(resumed()) for _ in range(5)]
    assert all(isinstance(a, Admitted) for a in admitted)
    first = admitted[0]
    assert isinstance(first, Admitted)
    first.release(CloseReason.SLOW_CLIENT)  # the route sheds from now on, for 10 s
    clock.now += 1.0
    outcomes = [type(gate.admit(resumed())).__name__ for _ in range(3)]
    assert outcomes == ["Admitted", "Admitted", "Deferred"]
    # New streams are not reconnects: the budget does not apply to them.
    assert isinstance(gate.admit(subscription()), Admitted)
    clock.now += 0.5  # half a second refills one resume
    assert [type(gate.admit(resumed())).__name__ for _ in range(2)] == ["Admitted", "Deferred"]
    clock.now += 10.0  # no slow close for 10 s: the route no longer sheds
    assert all(isinstance(gate.admit(resumed()), Admitted) for _ in range(5))


def test_a_deferral_retries_in_two_to_four_seconds() -> None:
    clock = FakeClock()
    limits = AdmissionLimits(
        max_streams=100, max_streams_per_ip=0, max_topics=2, max_loop_lag=0, reconnect_budget=1
    )
    for jitter, retry_ms in ((0.0, 2000), (0.5, 3000), (0.99, 4000)):
        gate = Admission(
            limits, FakeFanout(topics={"a"}), None, jitter=lambda j=jitter: j, clock=clock
        )
        first = gate.admit(resumed())
        assert isinstance(first, Admitted)
        first.release(CloseReason.SLOW_CLIENT)
        assert isinstance(gate.admit(resumed()), Admitted)  # the budget's one resume
        deferred = gate.admit(resumed())
        assert isinstance(deferred, Deferred)
        assert deferred.retry_ms == retry_ms
