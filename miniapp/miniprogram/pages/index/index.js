// 首页: the chosen account's balance, days left, today's use and its meters.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { pickAccount, setCurrentAccountId } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

function meterView(m) {
  const unit = (m.today && m.today.unit) || (m.kind === 'water' ? 'm³' : 'kWh');
  return {
    id: m.id,
    label: m.label || (m.kind === 'water' ? '水表' : '电表'),
    address: m.address,
    relayText: fmt.relay(m.kind, m.relay),
    relayOff: m.relay === 'open',
    online: !!m.online,
    lastRead: fmt.dateTime(m.last_read_at),
    todayText: m.today ? `${fmt.quantity(m.today.quantity)} ${unit}` : '—',
    todayMoney: m.today && m.today.amount_fen !== null && m.today.amount_fen !== undefined ? fmt.money(m.today.amount_fen) : '',
    power: m.live && m.live.power_kw ? `${fmt.quantity(m.live.power_kw, 3)} kW` : '',
    balance: m.balance_fen === null || m.balance_fen === undefined ? '' : fmt.money(m.balance_fen),
  };
}

function detailView(d) {
  return {
    id: d.id,
    siteName: d.site && d.site.name,
    number: d.number,
    tenantName: d.tenant_name,
    room: d.room,
    statusText: fmt.accountStatus(d.status),
    available: fmt.money(d.available_fen),
    balance: fmt.money(d.balance_fen),
    low: d.available_fen <= 0,
    daysLeft: fmt.daysLeft(d.days_left),
    todayMoney: d.today ? fmt.money(d.today.amount_fen) : '—',
    todayElectricity: d.today && d.today.electricity_kwh !== null && d.today.electricity_kwh !== undefined ? `${fmt.quantity(d.today.electricity_kwh)} kWh` : '',
    todayWater: d.today && d.today.water_m3 !== null && d.today.water_m3 !== undefined ? `${fmt.quantity(d.today.water_m3)} m³` : '',
    meters: (d.meters || []).map(meterView),
  };
}

Component({
  behaviors: [refreshable],
  data: {
    loading: true,
    error: '',
    accounts: [],
    currentId: null,
    detail: null,
  },
  methods: {
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { items } = await api.get('/api/v1/accounts');
        const chosen = pickAccount(items);
        const accounts = items.map((a) => ({ id: a.id, label: `${a.site.name} ${a.number}` }));
        if (!chosen) {
          this.setData({ loading: false, accounts, currentId: null, detail: null });
          return;
        }
        const detail = await api.get(`/api/v1/accounts/${chosen.id}`);
        this.setData({ loading: false, accounts, currentId: chosen.id, detail: detailView(detail) });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    onSwitch(e) {
      const id = Number(e.currentTarget.dataset.id);
      if (id === this.data.currentId) return undefined;
      setCurrentAccountId(id);
      return this.load();
    },
    onRecharge() {
      wx.navigateTo({ url: `/pages/recharge/recharge?account=${this.data.currentId}` });
    },
    onBind() {
      wx.navigateTo({ url: '/pages/bind/bind' });
    },
  },
});
