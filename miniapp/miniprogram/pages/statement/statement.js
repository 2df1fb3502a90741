// 月度对账单: the month's statement of the current account — the numbers of the park's monthly
// comprehensive report for it (opening and closing balance, payments, use per TOU band, what
// was posted) — another month by the picker, and the same as Excel (download, then open).
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId, pickAccount } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

function thisMonth() {
  const now = new Date(Date.now() + 8 * 3600 * 1000); // the park's zone (UTC+8)
  return now.toISOString().slice(0, 7);
}

function line(label, fen, note) {
  return { label, amount: fmt.money(fen), note: note || '' };
}

function statementView(s) {
  const p = s.posted;
  const e = s.electricity;
  return {
    title: `${s.account.number} ${s.account.tenant_name} · ${s.label}`,
    opening: fmt.money(s.opening_fen),
    closing: fmt.money(s.closing_fen),
    payments: [...s.payments.map((x) => line(`${x.label}缴费`, x.amount_fen)), line('缴费合计', s.payments_fen)],
    usage: [
      line('用电', e.amount_fen, `${fmt.quantity(e.quantity)} kWh`),
      ...e.bands.map((b) => line(`　${b.label}时段`, b.amount_fen, `${fmt.quantity(b.quantity)} kWh`)),
      line('用水', s.water.amount_fen, `${fmt.quantity(s.water.quantity)} m³`),
    ],
    posted: [
      line('电费', p.electricity_fen, p.earlier_usage_fen ? `含上月读数 ${fmt.money(p.earlier_usage_fen)}` : ''),
      line('水费', p.water_fen),
      line('其他费用', p.fees_fen),
      line('公摊与损耗', p.shares_fen),
      line('退费', s.refunds_fen),
      line('调账与过户', s.adjustments_fen + s.transfers_fen),
    ],
    late: s.late_usage_fen ? fmt.money(s.late_usage_fen) : '',
  };
}

function empty(s) {
  return !s.opening_fen && !s.closing_fen && !s.payments_fen && !s.electricity.amount_fen
    && Number(s.electricity.quantity) === 0 && Number(s.water.quantity) === 0 && !s.refunds_fen;
}

Component({
  behaviors: [refreshable],
  data: {
    month: thisMonth(),
    maxMonth: thisMonth(),
    loading: true,
    error: '',
    noAccount: false,
    isEmpty: false,
    s: null,
    downloading: false,
  },
  methods: {
    onMonth(e) {
      this.setData({ month: e.detail.value });
      return this.load();
    },
    async load() {
      this.setData({ loading: true, error: '', noAccount: false });
      try {
        let accountId = currentAccountId();
        if (!accountId) {
          const chosen = pickAccount((await api.get('/api/v1/accounts')).items);
          accountId = chosen && chosen.id;
        }
        if (!accountId) {
          this.setData({ loading: false, noAccount: true });
          return;
        }
        this.accountId = accountId;
        const s = await api.get(`/api/v1/accounts/${accountId}/monthly-statement?month=${this.data.month}`);
        this.setData({ loading: false, s: statementView(s), isEmpty: empty(s) });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    async onDownload() {
      if (this.data.downloading) return;
      this.setData({ downloading: true });
      try {
        const file = await api.download(`/api/v1/accounts/${this.accountId}/monthly-statement/xlsx?month=${this.data.month}`);
        await new Promise((resolve, reject) => {
          wx.openDocument({ filePath: file, fileType: 'xlsx', showMenu: true, success: resolve, fail: () => reject(new api.ApiError(0, 'open_failed', '无法打开文件，请稍后重试')) });
        });
      } catch (err) {
        api.showError(err);
      } finally {
        this.setData({ downloading: false });
      }
    },
  },
});
