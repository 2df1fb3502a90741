"""Trips are decided in server/metering/alarms.py: a postpaid (后付费) account is never tripped
for its balance and hears no balance alarm; a prepaid one at the same balance is."""

from __future__ import annotations

from datetime import UTC, datetime

from server.metering import alarms
from server.metering.alarms import AlarmConfig, AlarmState, MeterContext, RelayVerdict
from server.metering.vocabulary import RelayState

WEDNESDAY_NOON = datetime(2026, 11, 18, 4, 0, tzinfo=UTC)


def test_a_postpaid_account_below_zero_is_not_tripped() -> None:
    config = AlarmConfig()
    prepaid = alarms.evaluate(-50_000, AlarmState(), config, WEDNESDAY_NOON, MeterContext())
    assert prepaid.relay.verdict is RelayVerdict.TRIP and prepaid.alarms
    postpaid = alarms.evaluate(
        -50_000, AlarmState(), config, WEDNESDAY_NOON, MeterContext(postpaid=True)
    )
    assert postpaid.relay.verdict is RelayVerdict.KEEP and postpaid.alarms == ()
    assert "后付费" in postpaid.relay.reason


def test_a_postpaid_account_tripped_by_the_platform_before_is_closed_again() -> None:
    context = MeterContext(
        relay=RelayState.OPEN, trip_cause=alarms.TripCause.PLATFORM, postpaid=True
    )
    decision = alarms.evaluate(100, AlarmState(), AlarmConfig(), WEDNESDAY_NOON, context)
    assert decision.relay.verdict is RelayVerdict.CLOSE
