// 发票: the payments not yet invoiced (all picked by default, tap to leave one out), the
// buyer (personal or company title, tax id, 增值税专用发票 with the company's address, phone,
// bank and account), where the invoice is sent (e-mail and/or mobile), and the account's
// invoices with their states; an issued one's PDF link is copied to open in a browser.
// The server checks everything again (tax id checksum, the invoiceable amount under a lock)
// and answers a refusal with the field it concerns.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId } = require('../../utils/account');

const FIELDS = ['buyer_name', 'buyer_tax_id', 'buyer_address', 'buyer_phone', 'buyer_bank', 'buyer_bank_account', 'email', 'phone'];

function paymentsView(payments, picked) {
  return payments.map((p) => ({
    ref: p.ref,
    label: `${p.channel_label} ${fmt.money(p.amount_fen)}`,
    when: (p.paid_at || '').slice(0, 10),
    open: fmt.money(p.invoiceable_fen),
    fen: p.invoiceable_fen,
    picked: picked[p.ref] !== false,
  }));
}

function invoicesView(invoices) {
  return invoices.map((i) => ({
    id: i.id,
    title: `${i.red ? '红字' : ''}${i.kind_label} ${fmt.money(i.amount_fen)}`,
    label: `${i.buyer_name} · ${(i.requested_at || '').slice(0, 10)}${i.invoice_no ? ` · ${i.invoice_no}` : ''}`,
    status: i.status_label,
    error: i.error,
    url: i.pdf_url || i.ofd_url || '',
  }));
}

Component({
  data: {
    loading: true,
    error: '',
    accountId: null,
    enabled: false,
    payments: [],
    total: '¥0.00',
    invoices: [],
    titleType: 'company',
    kind: 'normal',
    form: { buyer_name: '', buyer_tax_id: '', buyer_address: '', buyer_phone: '', buyer_bank: '', buyer_bank_account: '', email: '', phone: '' },
    errors: {},
    sending: false,
    done: '',
  },
  methods: {
    onLoad(query) {
      this.picked = {};
      this.setData({ accountId: Number((query && query.account) || currentAccountId()) || null });
      return this.load();
    },
    async onPullDownRefresh() {
      try {
        await this.load();
      } finally {
        wx.stopPullDownRefresh();
      }
    },
    async load() {
      const id = this.data.accountId;
      if (!id) {
        this.setData({ loading: false, error: '请先绑定户号' });
        return;
      }
      this.setData({ loading: true, error: '' });
      try {
        const overview = await api.get(`/api/v1/accounts/${id}/invoices`);
        this.overview = overview;
        this.setData({ loading: false, enabled: overview.enabled, invoices: invoicesView(overview.invoices) });
        this.refreshPayments();
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    refreshPayments() {
      const payments = paymentsView(this.overview.payments, this.picked);
      const fen = payments.filter((p) => p.picked).reduce((sum, p) => sum + p.fen, 0);
      this.setData({ payments, total: fmt.money(Math.min(fen, this.overview.invoiceable_fen)) });
    },
    onPick(e) {
      const { ref } = e.currentTarget.dataset;
      this.picked[ref] = this.picked[ref] === false;
      this.refreshPayments();
    },
    onTitleType(e) {
      const titleType = e.currentTarget.dataset.value;
      this.setData({ titleType, kind: titleType === 'personal' ? 'normal' : this.data.kind, errors: {} });
    },
    onKind(e) {
      this.setData({ kind: e.currentTarget.dataset.value, errors: {} });
    },
    onField(e) {
      const { name } = e.currentTarget.dataset;
      this.setData({ [`form.${name}`]: e.detail, [`errors.${name}`]: '', done: '' });
    },
    // What the form says before the server is asked (the server checks it all again).
    check() {
      const f = this.data.form;
      const errors = {};
      if (!f.buyer_name.trim()) errors.buyer_name = '请填写发票抬头';
      if (this.data.titleType === 'company' && !f.buyer_tax_id.trim()) errors.buyer_tax_id = '单位抬头须填写税号';
      if (this.data.kind === 'special') {
        if (!f.buyer_address.trim()) errors.buyer_address = '专票须填写单位地址';
        if (!f.buyer_phone.trim()) errors.buyer_phone = '专票须填写单位电话';
        if (!f.buyer_bank.trim()) errors.buyer_bank = '专票须填写开户银行';
        if (!f.buyer_bank_account.trim()) errors.buyer_bank_account = '专票须填写银行账号';
      }
      if (!f.email.trim() && !f.phone.trim()) errors.email = '请至少填写邮箱或手机号';
      this.setData({ errors });
      return Object.keys(errors).length === 0;
    },
    async onSubmit() {
      if (this.data.sending) return;
      const refs = this.data.payments.filter((p) => p.picked).map((p) => p.ref);
      if (!refs.length) {
        wx.showToast({ title: '请选择要开票的付款', icon: 'none' });
        return;
      }
      if (!this.check()) return;
      const body = { kind: this.data.kind, title_type: this.data.titleType, payments: refs };
      for (const name of FIELDS) body[name] = this.data.form[name].trim();
      this.setData({ sending: true, done: '' });
      try {
        const invoice = await api.post(`/api/v1/accounts/${this.data.accountId}/invoices`, body);
        this.picked = {};
        this.setData({ done: `已提交 ${fmt.money(invoice.amount_fen)} 的开票申请（${invoice.status_label}）` });
        await this.load();
      } catch (err) {
        const field = err.detail && err.detail.field;
        if (field && FIELDS.includes(field)) this.setData({ [`errors.${field}`]: err.message });
        else api.showError(err);
      } finally {
        this.setData({ sending: false });
      }
    },
    onCopy(e) {
      wx.setClipboardData({ data: e.currentTarget.dataset.url });
    },
  },
});
