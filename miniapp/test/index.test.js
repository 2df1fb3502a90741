const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { summary, detail, error } = require('./fixtures');

function routes(extra = {}) {
  return {
    'GET /api/v1/accounts': { data: { items: [summary()] } },
    'GET /api/v1/accounts/12': { data: detail() },
    ...extra,
  };
}

describe('首页 index', () => {
  test('shows balance, days left, today and each meter', async () => {
    const { storage } = installWx(routes());
    const page = renderPage('index');
    await page.instance.onShow();
    await settle();
    const t = text(page);
    expect(t).toContain('¥12.34');
    expect(t).toContain('12.5 天');
    expect(t).toContain('¥4.56');
    expect(t).toContain('3.21 kWh');
    expect(t).toContain('0.4 m³');
    expect(t).toContain('供电中');
    expect(t).toContain('已关阀');
    expect(t).toContain('在线');
    expect(t).toContain('离线');
    expect(t).toContain('0.704 kW');
    expect(t).toContain('2026-12-04 18:59');
    expect(page.querySelector('.switcher')).toBeFalsy();
    expect(storage.get('shuidian.account')).toBe(12);
  });

  test('switches between several accounts and remembers the choice', async () => {
    const second = summary({ id: 13, number: 'B-0202', available_fen: -50 });
    const { server, storage } = installWx(routes({
      'GET /api/v1/accounts': { data: { items: [summary(), second] } },
      'GET /api/v1/accounts/13': { data: detail({ id: 13, number: 'B-0202', available_fen: -50, days_left: null, meters: [] }) },
    }));
    const page = renderPage('index');
    await page.instance.onShow();
    await settle();
    expect(page.querySelectorAll('.switch-item')).toHaveLength(2);
    page.querySelectorAll('.switch-item')[1].dispatchEvent('tap');
    await settle(10);
    expect(server.to('GET /api/v1/accounts/13')).toHaveLength(1);
    expect(storage.get('shuidian.account')).toBe(13);
    const t = text(page);
    expect(t).toContain('-¥0.50');
    expect(t).toContain('余额不足');
    expect(t).toContain('该户号下暂无表计');
  });

  test('empty state leads to binding', async () => {
    const { wx } = installWx(routes({ 'GET /api/v1/accounts': { data: { items: [] } } }));
    const page = renderPage('index');
    await page.instance.onShow();
    await settle();
    expect(text(page)).toContain('还没有绑定户号');
    page.instance.onBind();
    expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/bind/bind' });
  });

  test('error state shows the server message and retries', async () => {
    let fail = true;
    installWx(routes({
      'GET /api/v1/accounts': () => (fail ? error(500, 'internal', '服务器内部错误') : { data: { items: [summary()] } }),
    }));
    const page = renderPage('index');
    await page.instance.onShow();
    await settle();
    expect(text(page)).toContain('服务器内部错误');
    fail = false;
    await page.instance.load();
    await settle();
    expect(text(page)).toContain('¥12.34');
  });

  test('pull-to-refresh reloads and stops the indicator; recharge opens the recharge page', async () => {
    const { wx, server } = installWx(routes());
    const page = renderPage('index');
    await page.instance.onShow();
    await page.instance.onPullDownRefresh();
    expect(server.to('GET /api/v1/accounts/12')).toHaveLength(2);
    expect(wx.stopPullDownRefresh).toHaveBeenCalled();
    page.instance.onRecharge();
    expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/recharge/recharge?account=12' });
  });
});
