const { installWx } = require('./helpers/wx');
const { error } = require('./fixtures');
const api = require('../miniprogram/utils/request');
const config = require('../miniprogram/config');

const ME = 'GET /api/v1/me';

describe('utils/request', () => {
  afterEach(() => {
    config.devLoginCode = '';
  });

  test('logs in first when there is no token, then sends the bearer token', async () => {
    const { wx, server, storage } = installWx({ [ME]: { data: { identity_id: 1 } } });
    await expect(api.get('/api/v1/me')).resolves.toEqual({ identity_id: 1 });
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(server.to('POST /api/v1/auth/login')[0].data).toEqual({ code: 'wx-code-1' });
    expect(server.to(ME)[0].header.Authorization).toBe('Bearer tok-1');
    expect(server.to(ME)[0].timeout).toBe(config.timeout);
    expect(storage.get(api.TOKEN_KEY)).toBe('tok-1');
  });

  test('401 logs in again once and retries once', async () => {
    const { wx, server, storage } = installWx({
      [ME]: (call) => (call.header.Authorization === 'Bearer tok-1' ? { data: { ok: 1 } } : error(401, 'unauthorized', '请先登录')),
    });
    storage.set(api.TOKEN_KEY, 'stale');
    await expect(api.get('/api/v1/me')).resolves.toEqual({ ok: 1 });
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(server.to(ME).map((c) => c.header.Authorization)).toEqual(['Bearer stale', 'Bearer tok-1']);
  });

  test('a second 401 is an error: no third try, no second log-in, token dropped', async () => {
    const { wx, server, storage } = installWx({ [ME]: error(401, 'unauthorized', '登录已过期') });
    storage.set(api.TOKEN_KEY, 'stale');
    await expect(api.get('/api/v1/me')).rejects.toMatchObject({ status: 401, error: 'unauthorized', message: '登录已过期' });
    expect(wx.login).toHaveBeenCalledTimes(1);
    expect(server.to(ME)).toHaveLength(2);
    expect(storage.has(api.TOKEN_KEY)).toBe(false);
  });

  test('several requests needing a log-in share one', async () => {
    const { wx } = installWx({ [ME]: { data: {} }, 'GET /api/v1/accounts': { data: { items: [] } } });
    await Promise.all([api.get('/api/v1/me'), api.get('/api/v1/accounts'), api.get('/api/v1/me')]);
    expect(wx.login).toHaveBeenCalledTimes(1);
  });

  test("errors carry the server's code, Chinese message and detail", async () => {
    const { storage } = installWx({
      'POST /api/v1/bind/sms/verify': error(400, 'code_wrong', '验证码错误', { tries_left: 3 }),
    });
    storage.set(api.TOKEN_KEY, 't');
    const err = await api.post('/api/v1/bind/sms/verify', { code: '1' }).catch((e) => e);
    expect(err).toBeInstanceOf(api.ApiError);
    expect(err).toMatchObject({ status: 400, error: 'code_wrong', message: '验证码错误', detail: { tries_left: 3 } });
  });

  test('an answer without the error shape still gets a Chinese message', async () => {
    const { storage } = installWx({ [ME]: { status: 502, data: '<html>Bad Gateway</html>' } });
    storage.set(api.TOKEN_KEY, 't');
    await expect(api.get('/api/v1/me')).rejects.toMatchObject({ status: 502, error: 'server', message: api.MESSAGES.server });
  });

  test('timeout and network failure', async () => {
    const { storage } = installWx({
      [ME]: { fail: 'request:fail timeout' },
      'GET /api/v1/accounts': { fail: 'request:fail net::ERR_CONNECTION_REFUSED' },
    });
    storage.set(api.TOKEN_KEY, 't');
    await expect(api.get('/api/v1/me')).rejects.toMatchObject({ status: 0, error: 'timeout', message: '请求超时，请检查网络后重试' });
    await expect(api.get('/api/v1/accounts')).rejects.toMatchObject({ status: 0, error: 'network', message: api.MESSAGES.network });
  });

  test('403 wechat_user_blocked and 503 sms_unavailable get a clear message', async () => {
    installWx({
      'POST /api/v1/auth/login': error(403, 'wechat_user_blocked', 'blocked'),
    });
    await expect(api.get('/api/v1/me')).rejects.toMatchObject({ status: 403, error: 'wechat_user_blocked', message: api.MESSAGES.wechat_user_blocked });
    const { storage } = installWx({ 'POST /api/v1/bind/sms/send': error(503, 'sms_unavailable', 'x') });
    storage.set(api.TOKEN_KEY, 't');
    await expect(api.post('/api/v1/bind/sms/send', {})).rejects.toMatchObject({ status: 503, message: api.MESSAGES.sms_unavailable });
  });

  test('a failed wx.login is reported', async () => {
    const { wx } = installWx({ [ME]: { data: {} } });
    wx.login.mockImplementation(({ fail }) => fail({ errMsg: 'login:fail' }));
    await expect(api.get('/api/v1/me')).rejects.toMatchObject({ error: 'wechat_login_failed', message: api.MESSAGES.wechat_login_failed });
  });

  test('devLoginCode replaces wx.login in development', async () => {
    config.devLoginCode = 'demo-zhang';
    const { wx, server } = installWx({ [ME]: { data: {} } });
    await api.get('/api/v1/me');
    expect(wx.login).not.toHaveBeenCalled();
    expect(server.to('POST /api/v1/auth/login')[0].data).toEqual({ code: 'demo-zhang' });
  });

  test('204 answers null; logout revokes and forgets the token', async () => {
    const { server, storage } = installWx({ 'POST /api/v1/auth/logout': { status: 204 } });
    storage.set(api.TOKEN_KEY, 't');
    await expect(api.logout()).resolves.toBeUndefined();
    expect(server.to('POST /api/v1/auth/logout')[0].header.Authorization).toBe('Bearer t');
    expect(storage.has(api.TOKEN_KEY)).toBe(false);
  });

  test('auth: false sends no token and never logs in', async () => {
    const { wx, server } = installWx({ [ME]: error(401, 'unauthorized', '请先登录') });
    await expect(api.get('/api/v1/me', { auth: false })).rejects.toMatchObject({ status: 401 });
    expect(wx.login).not.toHaveBeenCalled();
    expect(server.to(ME)[0].header.Authorization).toBeUndefined();
  });
});
