// Answers shaped as docs/tenant-api.md describes them.
const site = { id: 1, name: '星河产业园' };

function summary(overrides = {}) {
  return {
    id: 12, site, number: 'A-0101', tenant_name: '张记餐饮', room: '1号楼 1F 0101',
    status: 'open', billing_mode: 'prepaid', role: 'owner', balance_fen: 1234, available_fen: 1234,
    ...overrides,
  };
}

function detail(overrides = {}) {
  return {
    ...summary(),
    credit_limit_fen: 0,
    days_left: 12.5,
    today: { electricity_kwh: '3.2100', water_m3: '0.4000', amount_fen: 456 },
    meters: [
      { id: 7, address: '000000001234', kind: 'electricity', label: '电表', relay: 'closed', online: true,
        last_read_at: '2026-12-04T18:59:24+08:00',
        live: { voltage_v: '220.1', current_a: '3.20', power_kw: '0.704', power_factor: '0.98' },
        today: { quantity: '3.2100', unit: 'kWh', amount_fen: 321 }, balance_fen: null },
      { id: 8, address: '000000005678', kind: 'water', label: '水表', relay: 'open', online: false,
        last_read_at: '2026-12-04T17:00:00+08:00', live: null,
        today: { quantity: '0.4000', unit: 'm³', amount_fen: 135 }, balance_fen: null },
    ],
    ...overrides,
  };
}

const error = (status, code, message, detail = {}) => ({ status, data: { error: code, message, detail } });

module.exports = { site, summary, detail, error };
