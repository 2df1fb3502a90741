"""Notify: messages to tenants and staff — SMS (Alibaba/Tencent Cloud, with delivery
receipts), voice calls (Alibaba Cloud, with quiet hours), e-mail, mini-program subscribe
messages and official-account template messages; recipients by role (owner, accountant,
staff) with per-recipient channel preferences; per-organisation template overrides.

Who writes what. An event's own service (metering's alarm service today; payments, billing
and staff alerts next) calls `server.notify.service.outbox.enqueue` on its own connection,
inside its own transaction: the message commits or rolls back with the event that causes it,
so a process dying in between loses nothing and invents nothing. `notify_message` is written
by this context alone (enqueue, the notifier's claims and outcomes, staff resends); the
events' tables stay their contexts' own. Staff alerts (`enqueue_staff`) come from metering
(a gateway going offline) and payments (reconciliation differences); bills and arrears have
entry points (`service/reminders.py`) for the billing that does not exist yet. The arrow is
one way: metering and payments import notify; notify imports accounts (recipients: the
owner's phone, bound WeChat identities and their subscribe allowances) and core, never
metering or payments, so there is no import circle (staff and sites are read in SQL).
Template keys are plain strings (`alarm.balance`, `alarm.trip` …).

Why not read the events' outbox rows (`alarm_record.notified_at IS NULL`) instead: that
would make the notifier a second writer of metering's table, and every new event kind a new
poll. Why not the `job` table (#11): a message is its own durable row with a delivery state
staff search and resend (the delivery log); claiming it with `FOR UPDATE SKIP LOCKED` is the
same one-statement claim the jobs use, without a second row per message.
"""
