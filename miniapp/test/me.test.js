const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { summary, error } = require('./fixtures');
const api = require('../miniprogram/utils/request');

const TEMPLATES = (low = 0) => ({ templates: [
  { template_id: 'tpl-low', purpose: 'low_balance', title: '余额不足提醒', remaining: low },
  { template_id: 'tpl-off', purpose: 'power_off', title: '断电/关阀通知', remaining: 2 },
] });

function setup(extra = {}) {
  let bound = [summary(), summary({ id: 13, number: 'B-0202', role: 'accountant' })];
  const env = installWx({
    'GET /api/v1/me': () => ({ data: { identity_id: 1, nickname: '张先生', accounts: bound } }),
    'GET /api/v1/me/subscriptions': { data: TEMPLATES() },
    'POST /api/v1/me/subscriptions': { data: TEMPLATES(1) },
    'DELETE /api/v1/accounts/12/binding': () => { bound = bound.filter((a) => a.id !== 12); return { status: 204 }; },
    'POST /api/v1/auth/logout': { status: 204 },
    ...extra,
  });
  env.storage.set(api.TOKEN_KEY, 't');
  env.storage.set('shuidian.account', 12);
  return env;
}

async function shown() {
  const page = renderPage('me');
  await page.instance.onShow();
  await settle();
  return page;
}

describe('我的 me', () => {
  test('accounts with role and balance, subscriptions with what is left', async () => {
    setup();
    const t = text(await shown());
    expect(t).toContain('张先生');
    expect(t).toContain('星河产业园 A-0101');
    expect(t).toContain('户主');
    expect(t).toContain('财务');
    expect(t).toContain('可用 ¥12.34');
    expect(t).toContain('余额不足提醒');
    expect(t).toContain('未订阅');
    expect(t).toContain('剩余 2 次');
  });

  test('电子发票 opens the invoice page for the current account', async () => {
    const { wx } = setup();
    const page = await shown();
    expect(text(page)).toContain('电子发票');
    page.instance.onInvoices();
    expect(wx.navigateTo).toHaveBeenCalledWith({ url: '/pages/invoice/invoice?account=12' });
  });

  test('unbind asks first, then deletes the binding and reloads', async () => {
    const { wx, server, storage } = setup();
    const page = await shown();
    wx.showModal.mockImplementationOnce(({ success }) => success({ confirm: false, cancel: true }));
    await page.instance.onUnbind({ currentTarget: { dataset: { id: 12 } } });
    expect(server.to('DELETE /api/v1/accounts/12/binding')).toHaveLength(0);
    await page.instance.onUnbind({ currentTarget: { dataset: { id: 12 } } });
    expect(wx.showModal).toHaveBeenLastCalledWith(expect.objectContaining({ title: '解除绑定', content: expect.stringContaining('A-0101') }));
    expect(server.to('DELETE /api/v1/accounts/12/binding')).toHaveLength(1);
    expect(storage.has('shuidian.account')).toBe(false);
    await settle();
    expect(text(page)).not.toContain('A-0101');
  });

  test('subscribing posts wx.requestSubscribeMessage answer for our templates', async () => {
    const { wx, server } = setup();
    wx.requestSubscribeMessage.mockImplementation(({ success }) => success({ errMsg: 'requestSubscribeMessage:ok', 'tpl-low': 'accept', 'tpl-off': 'reject' }));
    const page = await shown();
    await page.instance.onSubscribe();
    await settle();
    expect(wx.requestSubscribeMessage.mock.calls[0][0].tmplIds).toEqual(['tpl-low', 'tpl-off']);
    expect(server.to('POST /api/v1/me/subscriptions')[0].data).toEqual({ results: { 'tpl-low': 'accept', 'tpl-off': 'reject' } });
    expect(text(page)).toContain('剩余 1 次');
  });

  test('logout revokes the token and forgets the account', async () => {
    const { server, storage } = setup();
    const page = await shown();
    await page.instance.onLogout();
    await settle();
    expect(server.to('POST /api/v1/auth/logout')).toHaveLength(1);
    expect(storage.has(api.TOKEN_KEY)).toBe(false);
    expect(storage.has('shuidian.account')).toBe(false);
    expect(text(page)).toContain('已退出登录');
  });

  test('pull-to-refresh reloads and stops the indicator', async () => {
    const { wx, server } = setup();
    const page = await shown();
    await page.instance.onPullDownRefresh();
    expect(server.to('GET /api/v1/me')).toHaveLength(2);
    expect(wx.stopPullDownRefresh).toHaveBeenCalled();
  });

  test('empty and error states', async () => {
    setup({ 'GET /api/v1/me': { data: { identity_id: 1, nickname: '', accounts: [] } } });
    expect(text(await shown())).toContain('还没有绑定户号');
    setup({ 'GET /api/v1/me/subscriptions': error(500, 'internal', '服务器内部错误') });
    expect(text(await shown())).toContain('服务器内部错误');
  });
});
