// 转供电合规: the period's resale compliance statement for the tenant's account — what they
// paid per kWh against the grid's average settlement price, their common-area and loss
// shares, the site's loss rate against its cap and the operator's own use not passed on,
// with a flag wherever a mark-up appears (GET /api/v1/accounts/<id>/compliance).
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId, pickAccount } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

// "2026-11" moved by `step` months
function shift(period, step) {
  const [y, m] = period.split('-').map(Number);
  const n = y * 12 + (m - 1) + step;
  return `${Math.floor(n / 12)}-${String((n % 12) + 1).padStart(2, '0')}`;
}

const flagLabels = (flags) => (flags || []).map((f) => f.label);

function mineView(m, site) {
  if (!m) return null;
  return {
    kwh: `${fmt.quantity(m.kwh)} kWh`,
    energy: fmt.money(m.energy_fen),
    common: fmt.money(m.common_fen),
    loss: fmt.money(m.loss_fen),
    total: fmt.money(m.total_fen),
    energyPrice: `¥${fmt.quantity(m.energy_price, 4)}/kWh`,
    effectivePrice: `¥${fmt.quantity(m.effective_price, 4)}/kWh`,
    gridPrice: `¥${fmt.quantity(site.grid_price, 4)}/kWh`,
    lossRatio: m.loss_ratio,
  };
}

function siteView(s) {
  return {
    gridKwh: `${fmt.quantity(s.grid_kwh)} kWh`,
    gridBill: fmt.money(s.grid_bill_fen),
    lossKwh: `${fmt.quantity(s.loss_kwh)} kWh`,
    lossRate: `${s.loss_rate}（上限 ${s.loss_cap}）`,
    ownUse: `${fmt.quantity(s.own_use_kwh)} kWh · ${fmt.money(s.own_use_fen)}`,
    ownUsePassedOn: s.own_use_passed_on ? '已计入租户电费' : '未分摊给租户',
  };
}

Component({
  behaviors: [refreshable],
  data: {
    period: '',
    periodLabel: '',
    loading: true,
    error: '',
    noAccount: false,
    published: false,
    mine: null,
    site: null,
    flags: [],
    flagText: '',
  },
  methods: {
    onPrevious() {
      return this.load(shift(this.data.period, -1));
    },
    onNext() {
      return this.load(shift(this.data.period, 1));
    },
    onRetry() {
      return this.load(this.data.period || undefined);
    },
    async load(period) {
      if (typeof period !== 'string') period = this.data.period || undefined; // onShow, refresh
      this.generation = (this.generation || 0) + 1; // an older answer is dropped
      const generation = this.generation;
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
        const query = period ? `?period=${encodeURIComponent(period)}` : '';
        const s = await api.get(`/api/v1/accounts/${accountId}/compliance${query}`);
        if (generation !== this.generation) return;
        this.setData({
          loading: false,
          period: s.period,
          periodLabel: fmt.period(s.period),
          published: s.published,
          site: s.site ? siteView(s.site) : null,
          mine: s.site ? mineView(s.mine, s.site) : null,
        });
        const flags = s.site ? flagLabels(s.site.flags).concat(flagLabels(s.mine && s.mine.flags)) : [];
        this.setData({ flags, flagText: flags.join('、') });
      } catch (err) {
        if (generation === this.generation) this.setData({ loading: false, error: err.message });
      }
    },
  },
});
