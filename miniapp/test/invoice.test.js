const { installWx, renderPage, settle, text } = require('./helpers/wx');
const api = require('../miniprogram/utils/request');

const OVERVIEW = {
  enabled: true,
  invoiceable_fen: 15000,
  payments: [
    { ref: 'R20261201001', kind: 'online', channel: 'wechat', channel_label: '微信支付', paid_at: '2026-12-01T10:00:00+08:00', amount_fen: 10000, refunded_fen: 0, invoiced_fen: 0, invoiceable_fen: 10000 },
    { ref: 'C7', kind: 'counter', channel: 'cash', channel_label: '现金', paid_at: '2026-11-20T09:00:00+08:00', amount_fen: 5000, refunded_fen: 0, invoiced_fen: 0, invoiceable_fen: 5000 },
  ],
  items: [{ kind: 'electricity', label: '电费', name: '*供电*电费', tax_rate: '0.13' }],
  default_item: 'electricity',
  invoices: [
    { id: 3, number: 'I20261128aa', account_id: 12, kind: 'normal', kind_label: '普通发票', title_type: 'company', buyer_name: '深圳市甲乙科技有限公司', buyer_tax_id: '91110108MA01KPGK0L', amount_fen: 8000, tax_fen: 920, status: 'issued', status_label: '已开具', red: false, invoice_no: '26442000000000000001', pdf_url: 'https://inv.example/fp/1.pdf', ofd_url: '', error: '', requested_at: '2026-11-28T10:00:00+08:00', issued_at: '2026-11-28T10:01:00+08:00' },
    { id: 2, number: 'I20261101bb', account_id: 12, kind: 'normal', kind_label: '普通发票', title_type: 'personal', buyer_name: '张三', buyer_tax_id: '', amount_fen: 3000, tax_fen: 345, status: 'failed', status_label: '开具失败', red: false, invoice_no: '', pdf_url: '', ofd_url: '', error: '22: 购方名称与税号不匹配', requested_at: '2026-11-01T10:00:00+08:00', issued_at: null },
  ],
};

function setup(post) {
  const env = installWx({
    'GET /api/v1/accounts/12/invoices': { data: OVERVIEW },
    'POST /api/v1/accounts/12/invoices': post || ((call) => ({ status: 201, data: { ...OVERVIEW.invoices[1], id: 4, amount_fen: 10000, status: 'requested', status_label: '待审核', buyer_name: call.data.buyer_name } })),
  });
  env.storage.set(api.TOKEN_KEY, 't');
  env.wx.setClipboardData = jest.fn();
  return env;
}

async function opened() {
  const page = renderPage('invoice');
  await page.instance.onLoad({ account: '12' });
  await settle();
  return page;
}

describe('电子发票 invoice request', () => {
  test('shows the invoiceable payments, picked by default, and the invoices with their states', async () => {
    const { wx } = setup();
    const page = await opened();
    const t = text(page);
    expect(t).toContain('可开票的付款 共 ¥150.00');
    expect(t).toContain('微信支付 ¥100.00');
    expect(t).toContain('已开具');
    expect(t).toContain('22: 购方名称与税号不匹配');
    page.instance.onCopy({ currentTarget: { dataset: { url: 'https://inv.example/fp/1.pdf' } } });
    expect(wx.setClipboardData).toHaveBeenCalledWith({ data: 'https://inv.example/fp/1.pdf' });
  });

  test('leaves a payment out, checks the form, then sends the request', async () => {
    const { server, wx } = setup();
    const page = await opened();
    page.instance.onPick({ currentTarget: { dataset: { ref: 'C7' } } });
    await settle();
    expect(text(page)).toContain('共 ¥100.00');
    await page.instance.onSubmit();
    await settle();
    expect(text(page)).toContain('请填写发票抬头');
    expect(server.to('POST /api/v1/accounts/12/invoices')).toHaveLength(0);
    const field = (name, value) => page.instance.onField({ currentTarget: { dataset: { name } }, detail: value });
    field('buyer_name', '深圳市甲乙科技有限公司');
    field('buyer_tax_id', '91110108MA01KPGK0L');
    field('email', 'finance@example.com');
    await page.instance.onSubmit();
    await settle();
    const [sent] = server.to('POST /api/v1/accounts/12/invoices');
    expect(sent.data).toMatchObject({ kind: 'normal', title_type: 'company', payments: ['R20261201001'], buyer_tax_id: '91110108MA01KPGK0L', email: 'finance@example.com' });
    expect(text(page)).toContain('已提交 ¥100.00 的开票申请（待审核）');
    expect(wx.showToast).not.toHaveBeenCalled();
  });

  test("a special invoice asks for the bank details; the server's refusal lands on its field", async () => {
    const { server } = setup(() => ({ status: 422, data: { error: 'bad_invoice_request', message: '税号校验位不正确', detail: { field: 'buyer_tax_id' } } }));
    const page = await opened();
    page.instance.onKind({ currentTarget: { dataset: { value: 'special' } } });
    const field = (name, value) => page.instance.onField({ currentTarget: { dataset: { name } }, detail: value });
    field('buyer_name', '深圳市甲乙科技有限公司');
    field('buyer_tax_id', '91110108MA01KPGK0M');
    field('phone', '13800138000');
    await page.instance.onSubmit();
    await settle();
    expect(text(page)).toContain('专票须填写开户银行');
    expect(server.to('POST /api/v1/accounts/12/invoices')).toHaveLength(0);
    for (const [name, value] of [['buyer_address', '深圳市南山区 1 号'], ['buyer_phone', '0755-1'], ['buyer_bank', '招商银行'], ['buyer_bank_account', '7559']]) field(name, value);
    await page.instance.onSubmit();
    await settle();
    expect(server.to('POST /api/v1/accounts/12/invoices')[0].data.kind).toBe('special');
    expect(text(page)).toContain('税号校验位不正确');
  });
});
