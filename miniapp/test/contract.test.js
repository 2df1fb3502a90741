/**
 * @jest-environment node
 */
// The REAL request module against a live Shuidian server on loopback: log in (fake WeChat),
// bind by SMS (sandbox sender), read the detail, recharge, let the payment sandbox pay and
// sign the notification, and see the new balance. Run by tests/accounts/test_miniapp_contract.py,
// which starts the app and a control server and sets:
//   SHUIDIAN_CONTRACT_API      the API's base URL, e.g. http://127.0.0.1:8765
//   SHUIDIAN_CONTRACT_CONTROL  the control server: GET /seed, POST /wechat/code,
//                              GET /sms/last?phone=, POST /pay {order_no}
// Without them (plain `npm test`) it is skipped.
const { installNodeWx, control, nodeRequest } = require('./helpers/node-wx');

const API = process.env.SHUIDIAN_CONTRACT_API;
const CONTROL = process.env.SHUIDIAN_CONTRACT_CONTROL;
const maybe = API && CONTROL ? describe : describe.skip;

maybe('contract with the live server', () => {
  let api;
  let storage;

  beforeAll(() => {
    const config = require('../miniprogram/config');
    config.baseUrl = API.replace(/\/$/, '');
    config.devLoginCode = '';
    ({ storage } = installNodeWx(CONTROL.replace(/\/$/, '')));
    api = require('../miniprogram/utils/request');
  });

  test('login -> SMS binding -> detail -> recharge -> credited -> detail', async () => {
    const seed = await control(CONTROL, 'GET', '/seed');

    // Log in on the first request; nothing bound yet.
    const me = await api.get('/api/v1/me');
    expect(me.accounts).toEqual([]);
    expect(storage.get(api.TOKEN_KEY)).toBeTruthy();

    // A stale token: the module logs in again once and retries.
    storage.set(api.TOKEN_KEY, 'not-a-token');
    await expect(api.get('/api/v1/accounts')).resolves.toEqual({ items: [] });
    expect(storage.get(api.TOKEN_KEY)).not.toBe('not-a-token');

    // The site picker lists the seeded site.
    const sites = await api.get('/api/v1/sites');
    expect(sites.items.map((s) => s.id)).toContain(seed.site_id);

    // Errors keep the server's shape and Chinese message.
    const wrong = await api.post('/api/v1/bind/sms/send', { site_id: seed.site_id, account_number: 'NO-SUCH' }).catch((e) => e);
    expect(wrong).toBeInstanceOf(api.ApiError);
    expect(wrong.status).toBe(404);
    expect(wrong.error).toBe('not_found');
    expect(wrong.message).toMatch(/[\u4e00-\u9fff]/);

    // SMS binding.
    const target = { site_id: seed.site_id, account_number: seed.account_number };
    const sent = await api.post('/api/v1/bind/sms/send', target);
    expect(sent.phone_masked).toMatch(/\*{4}/);
    const { code } = await control(CONTROL, 'GET', `/sms/last?phone=${encodeURIComponent(seed.phone)}`);
    const bad = await api.post('/api/v1/bind/sms/verify', { ...target, code: code === '000000' ? '111111' : '000000' }).catch((e) => e);
    expect(bad).toMatchObject({ status: 400, error: 'code_wrong' });
    const { account } = await api.post('/api/v1/bind/sms/verify', { ...target, code });
    expect(account.number).toBe(seed.account_number);

    // Detail before.
    const before = await api.get(`/api/v1/accounts/${account.id}`);
    expect(Number.isInteger(before.available_fen)).toBe(true);
    expect(Array.isArray(before.meters)).toBe(true);

    // Recharge through WeChat Pay's sandbox.
    const options = await api.get(`/api/v1/accounts/${account.id}/recharge/options`);
    const amount = options.choices_fen.length ? options.choices_fen[0] : options.min_fen;
    const order = await api.post(`/api/v1/accounts/${account.id}/recharge`, { amount_fen: amount, channel: 'wechat' });
    expect(order).toMatchObject({ amount_fen: amount, channel: 'wechat', status: 'created' });
    expect(Object.keys(order.pay).sort()).toEqual(['appId', 'nonceStr', 'package', 'paySign', 'signType', 'timeStamp']);
    expect(order.pay.signType).toBe('RSA');
    let status = await api.get(`/api/v1/orders/${order.order_no}`);
    expect(status.status).toBe('created');

    await control(CONTROL, 'POST', '/pay', { order_no: order.order_no });
    for (let i = 0; i < 50 && status.status === 'created'; i++) {
      status = await api.get(`/api/v1/orders/${order.order_no}`);
    }
    expect(status).toMatchObject({ order_no: order.order_no, account_id: account.id, status: 'paid' });

    // Detail after: credited.
    const after = await api.get(`/api/v1/accounts/${account.id}`);
    expect(after.available_fen).toBe(before.available_fen + amount);
    expect(after.balance_fen).toBe(before.balance_fen + amount);

    // The recharge is the newest record.
    const records = await api.get(`/api/v1/accounts/${account.id}/records?type=all&limit=20`);
    expect(records.items[0]).toMatchObject({ type: 'recharge', amount_fen: amount });

    // Log out: the old token no longer works, the next request logs in again.
    const old = storage.get(api.TOKEN_KEY);
    await api.logout();
    expect(storage.has(api.TOKEN_KEY)).toBe(false);
    const revoked = await new Promise((resolve, reject) => nodeRequest({
      url: `${API.replace(/\/$/, '')}/api/v1/me`, header: { Authorization: `Bearer ${old}` }, success: resolve, fail: reject,
    }));
    expect(revoked.statusCode).toBe(401);
    expect(revoked.data.error).toBeTruthy();
  });
});
