// 充值: pick an amount (the site's choices or a custom one within its limits), pay through
// wx.requestPayment with the server's signed parameters, then poll the order until it is
// paid, closed or expired.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const config = require('../../config');
const { currentAccountId } = require('../../utils/account');

const FINAL = { paid: true, closed: true, expired: true };

function wait(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function requestPayment(pay) {
  return new Promise((resolve, reject) => {
    wx.requestPayment({ ...pay, success: resolve, fail: reject });
  });
}

Component({
  data: {
    loading: true,
    error: '',
    accountId: null,
    account: null,
    choices: [],
    selected: null, // fen, or null for the custom amount
    custom: '',
    customError: '',
    limits: '',
    paying: false,
    result: null, // {status, title, message}
  },
  methods: {
    onLoad(query) {
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
        const [account, options] = await Promise.all([
          api.get(`/api/v1/accounts/${id}`),
          api.get(`/api/v1/accounts/${id}/recharge/options`),
        ]);
        this.options = options;
        if (!options.channels.includes('wechat')) {
          this.setData({ loading: false, error: '该园区暂未开通微信充值，请联系物业缴费' });
          return;
        }
        this.setData({
          loading: false,
          account: { label: `${account.site.name} ${account.number}`, tenantName: account.tenant_name, available: fmt.money(account.available_fen) },
          choices: options.choices_fen.map((fen) => ({ fen, text: `${fmt.yuanShort(fen)} 元` })),
          selected: options.choices_fen.length ? options.choices_fen[0] : null,
          limits: `单笔 ${fmt.money(options.min_fen)} – ${fmt.money(options.max_fen)}`,
        });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    onChoose(e) {
      this.setData({ selected: Number(e.currentTarget.dataset.fen), custom: '', customError: '', result: null });
    },
    onCustom(e) {
      this.setData({ custom: e.detail, selected: null, customError: '', result: null });
    },
    // The amount to pay in fen, or null with customError set.
    amount() {
      if (this.data.selected !== null) return this.data.selected;
      const fen = fmt.parseYuan(this.data.custom);
      const { min_fen: min, max_fen: max } = this.options;
      if (fen === null) {
        this.setData({ customError: '请输入金额，最多两位小数' });
        return null;
      }
      if (fen < min || fen > max) {
        this.setData({ customError: `充值金额需在 ${fmt.money(min)} 到 ${fmt.money(max)} 之间` });
        return null;
      }
      return fen;
    },
    async onPay() {
      if (this.data.paying) return;
      const amountFen = this.amount();
      if (amountFen === null) return;
      this.setData({ paying: true, result: null });
      try {
        const order = await api.post(`/api/v1/accounts/${this.data.accountId}/recharge`, { amount_fen: amountFen, channel: 'wechat' });
        try {
          await requestPayment(order.pay);
        } catch (err) {
          const cancelled = /cancel/.test((err && err.errMsg) || '');
          this.setData({ result: { status: 'cancelled', title: cancelled ? '已取消支付' : '支付未完成', message: cancelled ? '' : '请稍后重试' } });
          return;
        }
        const status = await this.poll(order.order_no);
        this.showResult(status, order.amount_fen);
        if (status === 'paid') await this.load();
      } catch (err) {
        api.showError(err);
      } finally {
        this.setData({ paying: false });
      }
    },
    // The order's last status: polled until final or pollTimes asked.
    async poll(orderNo) {
      let status = 'created';
      for (let i = 0; i < config.pollTimes; i++) {
        ({ status } = await api.get(`/api/v1/orders/${encodeURIComponent(orderNo)}`));
        if (FINAL[status]) return status;
        await wait(config.pollInterval);
      }
      return status;
    },
    showResult(status, amountFen) {
      const results = {
        paid: { title: '充值成功', message: `已到账 ${fmt.money(amountFen)}` },
        closed: { title: '订单已关闭', message: '款项未扣或将原路退回' },
        expired: { title: '订单已过期', message: '请重新发起充值' },
      };
      const r = results[status] || { title: '支付结果确认中', message: '请稍后在“记录”中查看' };
      this.setData({ result: { status, ...r } });
      if (status === 'paid') wx.showToast({ title: '充值成功', icon: 'success' });
    },
  },
});
