const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { detail, error } = require('./fixtures');
const api = require('../miniprogram/utils/request');

const DAYS = {
  meter_id: 7, kind: 'electricity', unit: 'kWh', by: 'day',
  items: [
    { period: '2026-12-03', quantity: '10.5000', amount_fen: 630, bands: null },
    { period: '2026-12-04', quantity: '12.3400', amount_fen: 740, bands: null },
  ],
};
const MONTHS = { ...DAYS, by: 'month', items: [{ period: '2026-11', quantity: '320.0000', amount_fen: 19200, bands: null }] };

function setup(extra = {}) {
  const env = installWx({
    'GET /api/v1/accounts/12': { data: detail() },
    'GET /api/v1/accounts/12/meters/7/usage': (call) => ({ data: call.query.by === 'month' ? MONTHS : DAYS }),
    'GET /api/v1/accounts/12/meters/8/usage': { data: { meter_id: 8, kind: 'water', unit: 'm³', by: 'day', items: [] } },
    ...extra,
  });
  env.storage.set(api.TOKEN_KEY, 't');
  env.storage.set('shuidian.account', 12);
  return env;
}

describe('用电 usage', () => {
  test('day chart and a table of the same numbers, newest first', async () => {
    setup();
    const page = renderPage('usage');
    await page.instance.onShow();
    await settle();
    expect(page.data.categories).toEqual(['12-03', '12-04']);
    expect(page.data.values).toEqual([10.5, 12.34]);
    const rows = page.querySelectorAll('.row').slice(1).map((r) => Array.from(r.dom.children).map((c) => c.textContent.trim()).join(' '));
    expect(rows).toEqual(['12-04 12.34 ¥7.40', '12-03 10.5 ¥6.30']);
    expect(text(page)).toContain('合计 ¥13.70');
    expect(page.querySelector('#usage-chart')).toBeTruthy();
  });

  test('by month and another meter', async () => {
    const { server } = setup();
    const page = renderPage('usage');
    await page.instance.onShow();
    await page.instance.onBy({ detail: { name: 'month' } });
    await settle();
    expect(server.to('GET /api/v1/accounts/12/meters/7/usage').map((c) => c.query.by)).toEqual(['day', 'month']);
    expect(text(page)).toContain('2026年11月');
    expect(text(page)).toContain('320');
    page.querySelectorAll('.switch-item')[1].dispatchEvent('tap');
    await settle(10);
    expect(server.to('GET /api/v1/accounts/12/meters/8/usage')).toHaveLength(1);
    expect(text(page)).toContain('暂无用量数据');
  });

  test('error state', async () => {
    setup({ 'GET /api/v1/accounts/12/meters/7/usage': error(422, 'validation_failed', '查询区间不能超过 92 天', { field: 'end' }) });
    const page = renderPage('usage');
    await page.instance.onShow();
    await settle();
    expect(text(page)).toContain('查询区间不能超过 92 天');
  });

  test('no meters', async () => {
    const { wx } = setup({ 'GET /api/v1/accounts/12': { data: detail({ meters: [] }) } });
    const page = renderPage('usage');
    await page.instance.onPullDownRefresh();
    await settle();
    expect(text(page)).toContain('暂无表计');
    expect(wx.stopPullDownRefresh).toHaveBeenCalled();
  });
});
