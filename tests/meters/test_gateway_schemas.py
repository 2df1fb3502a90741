"""Gateway contract payloads: decimals as strings, required fields per op, topics."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from workers.meters.base import (
    Instant,
    MeterSnapshot,
    MeterStatus,
    MoneyRegister,
    Reading,
    RelayState,
)
from workers.meters.gateway.schemas import Ack, Command, DataMessage, MeterReading, Source
from workers.meters.gateway.topics import BadTopic, TopicKind, parse_topic, subscription, topic

DATA = (
    b'{"v":1,"msgid":"m1","seq":7,"src":"HIS","ts_collect":"2025-07-01T08:00:00+08:00",'
    b'"ts_send":"2025-07-01T09:30:00+08:00","meters":[{"addr":"000000000001","total":"1234.56",'
    b'"bands":{"1":"0.00","2":"100.50","3":"1034.06","4":"100.00"},"remaining":-150,"count":8,'
    b'"relay":"open","protected":false,"u":"220.1","i":"5.25","p":"1.155","pf":"0.950"}]}'
)


def test_data_message_parses_exactly():
    msg = DataMessage.model_validate_json(DATA)
    assert msg.src is Source.HISTORY and msg.seq == 7
    assert msg.ts_collect == datetime(2025, 7, 1, 0, 0, tzinfo=UTC)
    m = msg.meters[0]
    assert m.total == Decimal("1234.56") and m.bands[2] == Decimal("100.50")
    assert sum(m.bands.values()) == m.total
    assert m.money() == MoneyRegister(remaining_fen=-150, purchase_count=8)
    assert m.status().relay is RelayState.OPEN
    assert m.instant().power_factor == Decimal("0.950")


def test_a_message_without_instant_values_is_still_accepted():
    """U, I, P, PF are optional: a gateway predating them (or skipping them this round)."""
    old = DATA.replace(b',"u":"220.1","i":"5.25","p":"1.155","pf":"0.950"', b"")
    m = DataMessage.model_validate_json(old).meters[0]
    assert not m.has_instant()
    assert m.snapshot(datetime(2025, 7, 1, tzinfo=UTC)).instant is None
    assert m.total == Decimal("1234.56")
    full = DataMessage.model_validate_json(DATA).meters[0]
    assert full.has_instant()
    assert full.snapshot(datetime(2025, 7, 1, tzinfo=UTC)).instant == Instant(
        Decimal("220.1"), Decimal("5.25"), Decimal("1.155"), Decimal("0.950")
    )


def test_round_trip_keeps_decimals_as_strings():
    msg = DataMessage.model_validate_json(DATA)
    text = msg.model_dump_json()
    assert '"total":"1234.56"' in text and '"pf":"0.950"' in text
    assert DataMessage.model_validate_json(text) == msg


@pytest.mark.parametrize(
    "bad",
    [
        DATA.replace(b'"total":"1234.56"', b'"total":1234.56'),  # float on the wire
        DATA.replace(b'"total":"1234.56"', b'"total":"NaN"'),
        DATA.replace(b'"pf":"0.950"', b'"pf":0.95'),  # instant values are decimals too
        DATA.replace(b'"remaining":-150', b'"remaining":"-1.50"'),  # money is int fen
        DATA.replace(b'"v":1', b'"v":2'),
        DATA.replace(b'+08:00","ts_send"', b'","ts_send"'),  # naive timestamp
        DATA.replace(b'"src":"HIS"', b'"src":"HISTORY"'),
        b'{"v":1,"msgid":"m","seq":1,"src":"RT","ts_collect":"2025-07-01T00:00:00Z",'
        b'"ts_send":"2025-07-01T00:00:00Z","meters":[]}',
        b"not json",
    ],
)
def test_invalid_data_is_refused(bad):
    with pytest.raises(ValidationError):
        DataMessage.model_validate_json(bad)


def test_reading_from_snapshot():
    snap = MeterSnapshot(
        address="000000000009",
        reading=Reading(datetime(2025, 1, 1, tzinfo=UTC), Decimal("5.00"), {3: Decimal("5.00")}),
        status=MeterStatus(relay=RelayState.CLOSED, protected=True),
        instant=Instant(voltage=Decimal("221.0")),
        money=MoneyRegister(1234, 2),
    )
    reading = MeterReading.from_snapshot(snap)
    assert reading.snapshot(snap.reading.taken_at) == snap


def test_command_needs_the_fields_of_its_op():
    base = {"cmd_id": "c1", "expires_at": "2025-07-01T00:05:00Z", "addr": "000000000001"}
    Command.model_validate({**base, "op": "recharge", "amount_fen": 10000, "count": 9})
    with pytest.raises(ValidationError, match="count"):
        Command.model_validate({**base, "op": "recharge", "amount_fen": 10000})
    with pytest.raises(ValidationError):
        Command.model_validate({**base, "op": "recharge", "amount_fen": 100.5, "count": 9})
    with pytest.raises(ValidationError):
        Command.model_validate({**base, "op": "relay", "action": "explode"})
    cmd = Command.model_validate({**base, "op": "prices", "prices": {"1": "1.2000"}})
    assert cmd.prices == {1: Decimal("1.2000")}


def test_ack_has_an_error_exactly_when_not_ok():
    Ack(cmd_id="c", ok=True, ts=datetime.now(UTC))
    Ack(cmd_id="c", ok=False, error="refused", code=1, ts=datetime.now(UTC))
    with pytest.raises(ValidationError):
        Ack(cmd_id="c", ok=False, ts=datetime.now(UTC))
    with pytest.raises(ValidationError):
        Ack(cmd_id="c", ok=True, error="refused", ts=datetime.now(UTC))


def test_topics():
    assert topic("gw01", TopicKind.DATA) == "gw/gw01/up/data"
    assert topic("gw01", TopicKind.CMD, "t1/") == "t1/gw/gw01/down/cmd"
    assert subscription(TopicKind.ACK) == "gw/+/up/ack"
    parsed = parse_topic("t1/gw/gw01/up/ack", "t1/")
    assert (parsed.gw, parsed.kind) == ("gw01", TopicKind.ACK)
    for bad in ("gw/gw01/up/other", "x/gw/gw01/up/data", "gw//up/data"):
        with pytest.raises(BadTopic):
            parse_topic(bad)
    with pytest.raises(BadTopic):
        topic("a/b", TopicKind.DATA)
