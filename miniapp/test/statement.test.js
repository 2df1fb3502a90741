const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { error } = require('./fixtures');
const api = require('../miniprogram/utils/request');

const ROUTE = 'GET /api/v1/accounts/12/monthly-statement';
const XLSX = 'GET /api/v1/accounts/12/monthly-statement/xlsx';
const NOVEMBER = {
  month: '2026-11', label: '2026年11月', account: { number: 'A101', tenant_name: '一号便利店' },
  opening_fen: 50000, closing_fen: 23100, payments_fen: 0, payments: [],
  electricity: { quantity: '190.0000', amount_fen: 18100, other_fen: 0, bands: [
    { band: 2, label: '峰', quantity: '150.0000', amount_fen: 16000 },
    { band: 4, label: '谷', quantity: '40.0000', amount_fen: 2100 }] },
  water: { quantity: '0.0000', amount_fen: 0 },
  posted: { electricity_fen: 16900, water_fen: 0, fees_fen: 0, shares_fen: 0, earlier_usage_fen: 0 },
  late_usage_fen: 1200, refunds_fen: 10000, adjustments_fen: 0, transfers_fen: 0,
};
const EMPTY = { ...NOVEMBER, opening_fen: 0, closing_fen: 0, refunds_fen: 0, late_usage_fen: 0,
  electricity: { quantity: '0.0000', amount_fen: 0, other_fen: 0, bands: [] },
  posted: { ...NOVEMBER.posted, electricity_fen: 0 } };

function setup(routes) {
  const env = installWx(routes);
  env.storage.set(api.TOKEN_KEY, 't');
  env.storage.set('shuidian.account', 12);
  return env;
}

describe('月度对账单 statement', () => {
  test('the month\'s figures, another month by the picker, the Excel downloaded and opened', async () => {
    const { server, wx } = setup({
      [ROUTE]: (call) => ({ data: call.query.month === '2026-10' ? EMPTY : NOVEMBER }),
      [XLSX]: { status: 200, file: 'wxfile://tmp/statement.xlsx' },
    });
    const page = renderPage('statement');
    page.instance.setData({ month: '2026-11' });
    await page.instance.onShow();
    await settle();
    expect(server.to(ROUTE)[0].query).toEqual({ month: '2026-11' });
    let t = text(page);
    for (const figure of ['A101 一号便利店 · 2026年11月', '¥500.00', '¥231.00', '峰时段', '150 kWh', '¥160.00', '¥169.00', '¥100.00', '本月读数中 ¥12.00 在次月入账']) {
      expect(t).toContain(figure);
    }
    page.querySelector('.download').dispatchEvent('click');
    await settle();
    const [download] = server.to(XLSX);
    expect(download.query).toEqual({ month: '2026-11' });
    expect(download.header.Authorization).toBe('Bearer t');
    expect(wx.openDocument).toHaveBeenCalledWith(expect.objectContaining({ filePath: 'wxfile://tmp/statement.xlsx', fileType: 'xlsx' }));

    await page.instance.onMonth({ detail: { value: '2026-10' } });
    await settle();
    expect(server.to(ROUTE)[1].query).toEqual({ month: '2026-10' });
    t = text(page);
    expect(t).toContain('本月没有账目');
    expect(t).not.toContain('下载 Excel');
  });

  test('error state and retry; a failed download is a toast', async () => {
    let fail = true;
    const { wx } = setup({
      [ROUTE]: () => (fail ? error(404, 'not_found', '账户不存在（或未绑定）') : { data: NOVEMBER }),
      [XLSX]: { status: 500 },
    });
    const page = renderPage('statement');
    await page.instance.onShow();
    await settle();
    expect(text(page)).toContain('账户不存在（或未绑定）');
    fail = false;
    page.querySelector('.retry').dispatchEvent('click');
    await settle();
    expect(text(page)).toContain('¥231.00');
    page.querySelector('.download').dispatchEvent('click');
    await settle();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '服务器开小差了，请稍后重试' }));
    expect(wx.openDocument).not.toHaveBeenCalled();
  });
});
