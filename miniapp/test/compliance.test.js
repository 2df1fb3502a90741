const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { summary, error } = require('./fixtures');

// An answer shaped as ComplianceOut (docs/tenant-api.md): a 5 % loss under a 10 % cap and a
// tenant whose energy price is above the grid's (a mark-up, flagged).
function statement(period = '2026-11', overrides = {}) {
  return {
    account_id: 12, period, published: true,
    site: { grid_kwh: '2000.0000', grid_bill_fen: 140000, grid_price: '0.7000', loss_kwh: '100.0000',
      loss_rate: '5.00%', loss_cap: '10.00%', own_use_kwh: '400.0000', own_use_fen: 28000,
      own_use_passed_on: false, flags: [] },
    mine: { kwh: '500.0000', energy_fen: 42500, common_fen: 8400, loss_fen: 2917, total_fen: 53817,
      energy_price: '0.8500', effective_price: '1.0763', loss_ratio: '6.86%',
      flags: [{ code: 'markup', label: '电价加价' }] },
    ...overrides,
  };
}

function setup(compliance) {
  const env = installWx({
    'GET /api/v1/accounts': { data: { items: [summary()] } },
    'GET /api/v1/accounts/12/compliance': compliance,
  });
  env.storage.set('shuidian.token', 't');
  return env;
}

async function shown() {
  const page = renderPage('compliance');
  await page.instance.onShow();
  await settle();
  return page;
}

describe('转供电合规 compliance', () => {
  test('the account against the grid price, the site figures, and the mark-up flagged', async () => {
    const { server } = setup({ data: statement() });
    const page = await shown();
    const t = text(page);
    expect(t).toContain('2026年11月');
    expect(t).toContain('本期存在：电价加价');
    expect(t).toContain('500 kWh');
    expect(t).toContain('¥425.00');
    expect(t).toContain('¥84.00');
    expect(t).toContain('¥29.17');
    expect(t).toContain('¥538.17');
    expect(t).toContain('¥0.85/kWh');
    expect(t).toContain('¥1.0763/kWh');
    expect(t).toContain('¥0.7/kWh');
    expect(t).toContain('5.00%（上限 10.00%）');
    expect(t).toContain('未分摊给租户');
    expect(server.to('GET /api/v1/accounts/12/compliance')[0].query).toEqual({});
  });

  test('another month asks the server for it; a compliant one says so', async () => {
    const { server } = setup((call) => ({
      data: statement(call.query.period || '2026-11', { mine: { ...statement().mine, flags: [] } }),
    }));
    const page = await shown();
    await page.instance.onPrevious();
    await settle();
    expect(server.to('GET /api/v1/accounts/12/compliance')[1].query).toEqual({ period: '2026-10' });
    const t = text(page);
    expect(t).toContain('2026年10月');
    expect(t).toContain('合规');
    expect(t).not.toContain('本期存在');
  });

  test('a period not published yet, an account without use, and no account are empty states', async () => {
    setup({ data: { account_id: 12, period: '2026-12', published: false, site: null, mine: null } });
    expect(text(await shown())).toContain('本期电网账单和关口表读数尚未公布');

    setup({ data: statement('2026-11', { mine: null }) });
    expect(text(await shown())).toContain('本户本期无用电');

    installWx({ 'GET /api/v1/accounts': { data: { items: [] } } }).storage.set('shuidian.token', 't');
    expect(text(await shown())).toContain('还没有绑定户号');
  });

  test('an error shows its message and a retry that loads again', async () => {
    let fail = true;
    const { server } = setup(() => (fail ? error(503, 'unavailable', '服务暂不可用') : { data: statement() }));
    const page = await shown();
    expect(text(page)).toContain('服务暂不可用');
    fail = false;
    await page.instance.onRetry();
    await settle();
    expect(text(page)).toContain('本期存在：电价加价');
    expect(server.to('GET /api/v1/accounts/12/compliance')).toHaveLength(2);
  });
});
