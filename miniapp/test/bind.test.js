const { installWx, renderPage, settle, text } = require('./helpers/wx');
const { summary, error } = require('./fixtures');
const api = require('../miniprogram/utils/request');

const SITES = { data: { items: [{ id: 1, name: '星河产业园', organisation: '星河物业' }, { id: 2, name: '东湖园区', organisation: '东湖物业' }] } };

function setup(extra = {}) {
  const env = installWx({
    'GET /api/v1/sites': SITES,
    'POST /api/v1/bind/sms/send': { data: { phone_masked: '138****5678', expires_in: 300, resend_after: 60 } },
    'POST /api/v1/bind/sms/verify': { data: { account: summary() } },
    'POST /api/v1/bind/qr': { data: { account: summary({ id: 13, number: 'B-0202' }) } },
    ...extra,
  });
  env.storage.set(api.TOKEN_KEY, 't');
  return env;
}

async function filled() {
  const page = renderPage('bind');
  await page.instance.onLoad();
  await settle();
  page.instance.onSite({ detail: { value: '0' } });
  page.instance.onNumber({ detail: ' A-0101 ' });
  return page;
}

describe('绑定 bind', () => {
  afterEach(() => jest.useRealTimers());

  test('lists the sites for the picker', async () => {
    setup();
    const page = renderPage('bind');
    await page.instance.onLoad();
    await settle();
    expect(page.data.siteNames).toEqual(['星河产业园（星河物业）', '东湖园区（东湖物业）']);
    expect(text(page)).toContain('请选择园区');
  });

  test('sends the code, counts down, verifies and binds', async () => {
    const { server, wx, storage } = setup();
    const page = await filled();
    jest.useFakeTimers();
    const sending = page.instance.onSend();
    jest.advanceTimersByTime(1);
    await sending;
    expect(server.to('POST /api/v1/bind/sms/send')[0].data).toEqual({ site_id: 1, account_number: 'A-0101' });
    expect(page.data.countdown).toBe(60);
    jest.advanceTimersByTime(1000);
    expect(page.data.countdown).toBe(59);
    await page.instance.onSend(); // still counting down: nothing sent
    expect(server.to('POST /api/v1/bind/sms/send')).toHaveLength(1);
    expect(text(page)).toContain('138****5678');
    jest.advanceTimersByTime(60000);
    expect(page.data.countdown).toBe(0);
    jest.useRealTimers();

    page.instance.onCode({ detail: '123456' });
    await page.instance.onVerify();
    expect(server.to('POST /api/v1/bind/sms/verify')[0].data).toEqual({ site_id: 1, account_number: 'A-0101', code: '123456' });
    expect(storage.get('shuidian.account')).toBe(12);
    expect(wx.switchTab).toHaveBeenCalledWith({ url: '/pages/index/index' });
  });

  test('a wrong code says how many tries are left', async () => {
    const { wx } = setup({ 'POST /api/v1/bind/sms/verify': error(400, 'code_wrong', '验证码错误', { tries_left: 3 }) });
    const page = await filled();
    page.instance.onCode({ detail: '000000' });
    await page.instance.onVerify();
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '验证码错误，还可尝试 3 次' }));
    expect(wx.switchTab).not.toHaveBeenCalled();
  });

  test('too many codes starts the countdown from retry_after; SMS unavailable is explained', async () => {
    const { wx } = setup({ 'POST /api/v1/bind/sms/send': error(429, 'too_many_codes', '发送过于频繁', { retry_after: 42 }) });
    const page = await filled();
    await page.instance.onSend();
    expect(page.data.countdown).toBe(42);
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '发送过于频繁' }));
    page.instance.stopCountdown();
    const env = setup({ 'POST /api/v1/bind/sms/send': error(503, 'sms_unavailable', 'no channel') });
    const other = await filled();
    await other.instance.onSend();
    expect(env.wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: api.MESSAGES.sms_unavailable }));
  });

  test('nothing is sent without a site, a number or a 6-digit code', async () => {
    const { server, wx } = setup();
    const page = renderPage('bind');
    await page.instance.onLoad();
    await page.instance.onSend();
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '请选择园区' }));
    page.instance.onSite({ detail: { value: 1 } });
    await page.instance.onSend();
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '请输入户号' }));
    page.instance.onNumber({ detail: 'A-1' });
    page.instance.onCode({ detail: '12' });
    await page.instance.onVerify();
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '请输入 6 位验证码' }));
    expect(server.to('POST /api/v1/bind/sms/send')).toHaveLength(0);
    expect(server.to('POST /api/v1/bind/sms/verify')).toHaveLength(0);
  });

  test('scanning a QR code binds with its ticket', async () => {
    const { server, wx, storage } = setup();
    wx.scanCode.mockImplementation(({ success }) => success({ result: 'SDB1.abc.1765000000.sig', scanType: 'QR_CODE' }));
    const page = renderPage('bind');
    await page.instance.onLoad();
    await page.instance.onScan();
    expect(server.to('POST /api/v1/bind/qr')[0].data).toEqual({ ticket: 'SDB1.abc.1765000000.sig' });
    expect(storage.get('shuidian.account')).toBe(13);
    expect(wx.switchTab).toHaveBeenCalled();
  });

  test('a used ticket shows the server message; closing the camera does nothing', async () => {
    const { server, wx } = setup({ 'POST /api/v1/bind/qr': error(409, 'ticket_used', '二维码已使用') });
    wx.scanCode.mockImplementationOnce(({ fail }) => fail({ errMsg: 'scanCode:fail cancel' }));
    const page = renderPage('bind');
    await page.instance.onLoad();
    await page.instance.onScan();
    expect(server.to('POST /api/v1/bind/qr')).toHaveLength(0);
    wx.scanCode.mockImplementationOnce(({ success }) => success({ result: 'https://example.invalid/bind?ticket=SDB1.x.1.y' }));
    await page.instance.onScan();
    expect(server.to('POST /api/v1/bind/qr')[0].data).toEqual({ ticket: 'SDB1.x.1.y' });
    expect(wx.showToast).toHaveBeenLastCalledWith(expect.objectContaining({ title: '二维码已使用' }));
  });

  test('empty state without sites', async () => {
    setup({ 'GET /api/v1/sites': { data: { items: [] } } });
    const page = renderPage('bind');
    await page.instance.onLoad();
    await settle();
    expect(text(page)).toContain('暂无可绑定的园区');
  });

  test('error state when the sites cannot be loaded', async () => {
    setup({ 'GET /api/v1/sites': { fail: 'request:fail timeout' } });
    const page = renderPage('bind');
    await page.instance.onLoad();
    await settle();
    expect(text(page)).toContain('请求超时');
  });
});
