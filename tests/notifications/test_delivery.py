"""The wire format and the retry policy, without servers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.notifications import delivery, service


def test_signature_matches_the_standard_webhooks_test_vector() -> None:
    signature = delivery.sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_body_is_type_timestamp_and_data() -> None:
    at = datetime(2026, 11, 25, 20, 52, 1, 250000, tzinfo=UTC)
    body = delivery.render_body("cashback.credited", at, {"amount": "4.38"})
    assert body == (
        b'{"type":"cashback.credited","timestamp":"2026-11-25T20:52:01.250000Z",'
        b'"data":{"amount":"4.38"}}'
    )


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, delivery.Outcome.delivered),
        (204, delivery.Outcome.delivered),
        (301, delivery.Outcome.retry),
        (400, delivery.Outcome.rejected),
        (401, delivery.Outcome.rejected),
        (404, delivery.Outcome.rejected),
        (408, delivery.Outcome.retry),
        (410, delivery.Outcome.rejected),
        (429, delivery.Outcome.retry),
        (500, delivery.Outcome.retry),
        (503, delivery.Outcome.retry),
    ],
)
def test_answers_are_classified(status: int, outcome: delivery.Outcome) -> None:
    assert delivery.classify(status) is outcome


def test_backoff_doubles_from_a_minute_up_to_four_hours() -> None:
    minutes = [
        service.retry_delay(n) // timedelta(minutes=1) for n in range(1, service.MAX_ATTEMPTS)
    ]
    assert minutes == [1, 2, 4, 8, 16, 32, 64, 128, 240]
    assert service.retry_delay(30) == service.LONGEST_RETRY
    # The last try comes about eight hours after the first.
    assert sum(minutes) == 495


def test_review_alert_key_changes_once_per_deadline_window() -> None:
    start = datetime(2026, 11, 25, tzinfo=UTC)  # a multiple of 24 h since the epoch
    keys = {service.review_alert_key(24, start + timedelta(minutes=m)) for m in range(0, 1440, 5)}
    assert keys == {service.review_alert_key(24, start)}
    assert service.review_alert_key(24, start + timedelta(days=1)) not in keys
    assert service.review_alert_key(2, start) != service.review_alert_key(24, start)
