const fmt = require('../miniprogram/utils/format');

test('money from integer fen', () => {
  expect(fmt.money(1234)).toBe('¥12.34');
  expect(fmt.money(5)).toBe('¥0.05');
  expect(fmt.money(0)).toBe('¥0.00');
  expect(fmt.money(-50)).toBe('-¥0.50');
  expect(fmt.money(123456789)).toBe('¥1,234,567.89');
  expect(fmt.money(null)).toBe('—');
  expect(() => fmt.money(12.5)).toThrow(TypeError);
  expect(fmt.signedMoney(10000)).toBe('+¥100.00');
  expect(fmt.signedMoney(-321)).toBe('-¥3.21');
  expect(fmt.yuanShort(5000)).toBe('50');
  expect(fmt.yuanShort(1250)).toBe('12.5');
  expect(fmt.yuanShort(1205)).toBe('12.05');
});

test('typed yuan to fen without floats', () => {
  expect(fmt.parseYuan('12')).toBe(1200);
  expect(fmt.parseYuan('12.3')).toBe(1230);
  expect(fmt.parseYuan('0.07')).toBe(7);
  expect(fmt.parseYuan('19.99')).toBe(1999); // 19.99 * 100 is 1998.9999999999998 in floats
  expect(fmt.parseYuan('12.')).toBe(1200);
  expect(fmt.parseYuan('12.345')).toBeNull();
  expect(fmt.parseYuan('-1')).toBeNull();
  expect(fmt.parseYuan('abc')).toBeNull();
  expect(fmt.parseYuan('')).toBeNull();
});

test('quantities, days, dates', () => {
  expect(fmt.quantity('12.3400')).toBe('12.34');
  expect(fmt.quantity('0.4000')).toBe('0.4');
  expect(fmt.quantity('3.0000')).toBe('3');
  expect(fmt.quantity('0.7040', 3)).toBe('0.704');
  expect(fmt.quantity(null)).toBe('—');
  expect(fmt.daysLeft(12.56)).toBe('12.5 天');
  expect(fmt.daysLeft(0.2)).toBe('不足 1 天');
  expect(fmt.daysLeft(null)).toBe('—');
  expect(fmt.dateTime('2026-12-04T18:59:24+08:00')).toBe('2026-12-04 18:59');
  expect(fmt.shortDateTime('2026-12-04T18:59:24+08:00')).toBe('12-04 18:59');
  expect(fmt.period('2026-12-01')).toBe('12-01');
  expect(fmt.period('2026-12')).toBe('2026年12月');
  expect(fmt.relay('water', 'open')).toBe('已关阀');
  expect(fmt.relay('electricity', 'closed')).toBe('供电中');
});
