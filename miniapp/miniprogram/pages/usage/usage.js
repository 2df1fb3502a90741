// 用电: a meter's usage by day (the last 30 days) or by month (the last 12), as a chart and
// as a table of the same numbers.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId, pickAccount } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

Component({
  behaviors: [refreshable],
  data: {
    loading: true,
    error: '',
    meters: [],
    meterId: null,
    by: 'day',
    unit: '',
    rows: [],
    categories: [],
    values: [],
    total: '',
  },
  methods: {
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        let accountId = currentAccountId();
        if (!accountId) {
          const chosen = pickAccount((await api.get('/api/v1/accounts')).items);
          accountId = chosen && chosen.id;
        }
        if (!accountId) {
          this.setData({ loading: false, meters: [], rows: [] });
          return;
        }
        this.accountId = accountId;
        const detail = await api.get(`/api/v1/accounts/${accountId}`);
        const meters = (detail.meters || []).map((m) => ({ id: m.id, label: `${m.label || (m.kind === 'water' ? '水表' : '电表')} ${m.address.slice(-4)}` }));
        const keep = meters.find((m) => m.id === this.data.meterId);
        const meterId = keep ? keep.id : meters.length ? meters[0].id : null;
        this.setData({ meters, meterId });
        if (meterId) await this.loadUsage();
        else this.setData({ loading: false, rows: [] });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    async loadUsage() {
      this.setData({ loading: true, error: '' });
      try {
        const u = await api.get(`/api/v1/accounts/${this.accountId}/meters/${this.data.meterId}/usage?by=${this.data.by}`);
        const items = u.items || [];
        let totalFen = 0;
        let priced = false;
        const rows = items.map((it) => {
          if (it.amount_fen !== null && it.amount_fen !== undefined) {
            totalFen += it.amount_fen;
            priced = true;
          }
          return { period: fmt.period(it.period), quantity: fmt.quantity(it.quantity), amount: fmt.money(it.amount_fen) };
        });
        this.setData({
          loading: false,
          unit: u.unit,
          rows: rows.slice().reverse(), // newest first in the table
          categories: items.map((it) => fmt.period(it.period)),
          values: items.map((it) => Number(it.quantity)),
          total: priced ? fmt.money(totalFen) : '',
          hasUsage: items.some((it) => Number(it.quantity) !== 0),
        });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    onBy(e) {
      if (e.detail.name === this.data.by) return undefined; // van-tabs echoes a change of `active`
      this.setData({ by: e.detail.name });
      return this.loadUsage();
    },
    onMeter(e) {
      const meterId = Number(e.currentTarget.dataset.id);
      if (meterId === this.data.meterId) return undefined;
      this.setData({ meterId });
      return this.loadUsage();
    },
  },
});
