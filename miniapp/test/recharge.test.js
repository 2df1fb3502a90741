const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { detail, error } = require('./fixtures');
const config = require('../miniprogram/config');
const api = require('../miniprogram/utils/request');

config.pollInterval = 0;

const PAY = { appId: 'wxapp', timeStamp: '1764846000', nonceStr: 'n0nce', package: 'prepay_id=wx123', signType: 'RSA', paySign: 'c2ln' };

function setup(extra = {}) {
  let balance = 1234;
  const statuses = ['created', 'created', 'paid'];
  const env = installWx({
    'GET /api/v1/accounts/12': () => ({ data: detail({ available_fen: balance }) }),
    'GET /api/v1/accounts/12/recharge/options': { data: { choices_fen: [5000, 10000, 20000], min_fen: 100, max_fen: 500000, channels: ['wechat'] } },
    'POST /api/v1/accounts/12/recharge': (call) => ({ status: 201, data: { order_no: 'R20261205001', amount_fen: call.data.amount_fen, channel: 'wechat', status: 'created', expires_at: '2026-12-05T10:00:00+08:00', pay: PAY } }),
    'GET /api/v1/orders/R20261205001': () => {
      const status = statuses.shift();
      if (status === 'paid') balance += 10000;
      return { data: { order_no: 'R20261205001', account_id: 12, amount_fen: 10000, channel: 'wechat', status, paid_at: null } };
    },
    ...extra,
  });
  env.storage.set(api.TOKEN_KEY, 't');
  return env;
}

describe('充值 recharge', () => {
  test('shows the choices and limits', async () => {
    setup();
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    const t = text(page);
    expect(t).toContain('50 元');
    expect(t).toContain('100 元');
    expect(t).toContain('单笔 ¥1.00 – ¥5,000.00');
    expect(t).toContain('可用 ¥12.34');
  });

  test("pays with the server's parameters, polls until paid, shows the new balance", async () => {
    const { wx, server } = setup();
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    page.querySelectorAll('.choice')[1].dispatchEvent('tap');
    await settle();
    await page.instance.onPay();
    await settle();
    expect(server.to('POST /api/v1/accounts/12/recharge')[0].data).toEqual({ amount_fen: 10000, channel: 'wechat' });
    expect(wx.requestPayment).toHaveBeenCalledTimes(1);
    expect(wx.requestPayment.mock.calls[0][0]).toMatchObject(PAY);
    expect(server.to('GET /api/v1/orders/R20261205001')).toHaveLength(3);
    const t = text(page);
    expect(t).toContain('充值成功');
    expect(t).toContain('已到账 ¥100.00');
    expect(t).toContain('可用 ¥112.34');
  });

  test('a custom amount within the limits, in integer fen', async () => {
    const { server } = setup();
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    page.instance.onCustom({ detail: '19.99' });
    await page.instance.onPay();
    expect(server.to('POST /api/v1/accounts/12/recharge')[0].data.amount_fen).toBe(1999);
  });

  test('a custom amount outside the limits is refused before any order', async () => {
    const { server, wx } = setup();
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    page.instance.onCustom({ detail: '0.5' });
    await page.instance.onPay();
    await settle();
    expect(text(page)).toContain('充值金额需在 ¥1.00 到 ¥5,000.00 之间');
    page.instance.onCustom({ detail: 'abc' });
    await page.instance.onPay();
    expect(page.data.customError).toBe('请输入金额，最多两位小数');
    expect(server.to('POST /api/v1/accounts/12/recharge')).toHaveLength(0);
    expect(wx.requestPayment).not.toHaveBeenCalled();
  });

  test('cancelling the payment sheet polls nothing', async () => {
    const { server, wx } = setup();
    wx.requestPayment.mockImplementation(({ fail }) => fail({ errMsg: 'requestPayment:fail cancel' }));
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await page.instance.onPay();
    await settle();
    expect(text(page)).toContain('已取消支付');
    expect(server.to('GET /api/v1/orders/R20261205001')).toHaveLength(0);
  });

  test('a closed order is shown as closed', async () => {
    setup({ 'GET /api/v1/orders/R20261205001': { data: { order_no: 'R20261205001', status: 'closed' } } });
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await page.instance.onPay();
    await settle();
    expect(text(page)).toContain('订单已关闭');
  });

  test('an order still unpaid after the last poll says the result is being confirmed', async () => {
    const { server } = setup({ 'GET /api/v1/orders/R20261205001': { data: { order_no: 'R20261205001', status: 'created' } } });
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await page.instance.onPay();
    await settle();
    expect(server.to('GET /api/v1/orders/R20261205001')).toHaveLength(config.pollTimes);
    expect(text(page)).toContain('支付结果确认中');
  });

  test('a site without WeChat recharge says so', async () => {
    setup({ 'GET /api/v1/accounts/12/recharge/options': { data: { choices_fen: [5000], min_fen: 100, max_fen: 500000, channels: ['alipay'] } } });
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    expect(text(page)).toContain('该园区暂未开通微信充值');
  });

  test('an order the server refuses shows its message', async () => {
    const { wx } = setup({ 'POST /api/v1/accounts/12/recharge': error(422, 'validation_failed', '充值金额超出范围', { field: 'amount_fen' }) });
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await page.instance.onPay();
    expect(wx.showToast).toHaveBeenCalledWith(expect.objectContaining({ title: '充值金额超出范围' }));
    expect(wx.requestPayment).not.toHaveBeenCalled();
  });

  test('error state when the options cannot be loaded', async () => {
    setup({ 'GET /api/v1/accounts/12/recharge/options': error(404, 'not_found', '户号不存在') });
    const page = renderPage('recharge');
    await page.instance.onLoad({ account: '12' });
    await settle();
    expect(text(page)).toContain('户号不存在');
  });
});
