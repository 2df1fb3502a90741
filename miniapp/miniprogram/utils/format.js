// Money, quantities and dates as the tenant reads them. Money arrives as integer fen and is
// only ever added, compared and printed as integers (no floating-point arithmetic on money).

function toFen(value) {
  const fen = Number(value);
  if (!Number.isSafeInteger(fen)) throw new TypeError(`not an amount in fen: ${value}`);
  return fen;
}

// 1234 -> "¥12.34", -500 -> "-¥5.00", null -> "—"
function money(value) {
  if (value === null || value === undefined) return '—';
  const fen = toFen(value);
  const abs = Math.abs(fen);
  const yuan = String(Math.floor(abs / 100)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const cents = String(abs % 100).padStart(2, '0');
  return `${fen < 0 ? '-' : ''}¥${yuan}.${cents}`;
}

// 1000 -> "+¥10.00", -321 -> "-¥3.21" (records: money in and out)
function signedMoney(value) {
  const fen = toFen(value);
  return fen > 0 ? `+${money(fen)}` : money(fen);
}

// 5000 -> "50", 1250 -> "12.5" (the recharge buttons)
function yuanShort(value) {
  const fen = toFen(value);
  const cents = fen % 100;
  if (cents === 0) return String(fen / 100);
  return `${Math.floor(fen / 100)}.${String(cents).padStart(2, '0').replace(/0$/, '')}`;
}

// What the tenant typed in 元 -> integer fen, or null if it is not an amount:
// "12" -> 1200, "12.3" -> 1230, "0.05" -> 5, "12.345" / "abc" / "" -> null
function parseYuan(text) {
  const m = /^\s*(\d{1,7})(?:\.(\d{0,2}))?\s*$/.exec(String(text === undefined || text === null ? '' : text));
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || '').padEnd(2, '0'));
}

// "12.3400" -> "12.34", "0.4000" -> "0.4", "3" -> "3"; at most `digits` decimals, by string
function quantity(text, digits = 2) {
  if (text === null || text === undefined || text === '') return '—';
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(text));
  if (!m) return String(text);
  let decimals = (m[3] || '').slice(0, digits).replace(/0+$/, '');
  return `${m[1]}${m[2]}${decimals ? '.' + decimals : ''}`;
}

// 12.5 -> "12.5 天", 0.3 -> "不足 1 天", null -> "—"
function daysLeft(days) {
  if (days === null || days === undefined) return '—';
  if (days < 1) return '不足 1 天';
  return `${Math.floor(days * 10) / 10} 天`;
}

// "2026-12-04T18:59:24+08:00" -> "2026-12-04 18:59" (the server's local time, as written)
function dateTime(iso) {
  if (!iso) return '—';
  const m = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2})/.exec(iso);
  return m ? `${m[1]} ${m[2]}` : String(iso);
}

// "2026-12-04T18:59:24+08:00" -> "12-04 18:59"
function shortDateTime(iso) {
  const full = dateTime(iso);
  return /^\d{4}-/.test(full) ? full.slice(5) : full;
}

// "2026-12-01" -> "12-01", "2026-12" -> "2026年12月"
function period(text) {
  if (/^\d{4}-\d{2}-\d{2}$/.test(text)) return text.slice(5);
  const m = /^(\d{4})-(\d{2})$/.exec(text);
  return m ? `${m[1]}年${Number(m[2])}月` : text;
}

// A Date -> "YYYY-MM-DD" in the phone's local time
function isoDay(date) {
  const y = date.getFullYear();
  const mo = String(date.getMonth() + 1).padStart(2, '0');
  const d = String(date.getDate()).padStart(2, '0');
  return `${y}-${mo}-${d}`;
}

const RELAY = {
  electricity: { closed: '供电中', open: '已断电', unknown: '状态未知' },
  water: { closed: '通水中', open: '已关阀', unknown: '状态未知' },
};

function relay(kind, state) {
  return (RELAY[kind] || RELAY.electricity)[state] || RELAY.electricity.unknown;
}

const STATUS = { open: '正常', suspended: '已停用', closed: '已销户' };

function accountStatus(status) {
  return STATUS[status] || status || '—';
}

module.exports = {
  money, signedMoney, yuanShort, parseYuan, quantity, daysLeft, dateTime, shortDateTime,
  period, isoDay, relay, accountStatus,
};
