// 记录: recharges, daily deductions, refunds and fees, newest first, paged by the server's
// cursor as the tenant scrolls.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId, pickAccount } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

const TYPES = [
  { name: 'all', title: '全部' },
  { name: 'recharge', title: '充值' },
  { name: 'deduction', title: '扣费' },
  { name: 'refund', title: '退款' },
  { name: 'fee', title: '费用' },
];
const PAGE = 20;

function recordView(r) {
  return {
    id: r.id,
    title: r.title,
    when: r.type === 'deduction' && r.day ? r.day : fmt.dateTime(r.at),
    detail: r.detail || '',
    amount: fmt.signedMoney(r.amount_fen),
    incoming: r.amount_fen > 0,
  };
}

Component({
  behaviors: [refreshable],
  data: {
    types: TYPES,
    type: 'all',
    items: [],
    cursor: null,
    loading: true,
    loadingMore: false,
    done: false,
    error: '',
    noAccount: false,
  },
  methods: {
    onReachBottom() {
      return this.more();
    },
    onType(e) {
      if (e.detail.name === this.data.type) return undefined; // van-tabs echoes a change of `active`
      this.setData({ type: e.detail.name });
      return this.load();
    },
    async load() {
      this.generation = (this.generation || 0) + 1; // answers to an older list are dropped
      this.setData({ loading: true, error: '', items: [], cursor: null, done: false, noAccount: false });
      try {
        let accountId = currentAccountId();
        if (!accountId) {
          const chosen = pickAccount((await api.get('/api/v1/accounts')).items);
          accountId = chosen && chosen.id;
        }
        if (!accountId) {
          this.setData({ loading: false, noAccount: true, done: true });
          return;
        }
        this.accountId = accountId;
        await this.fetch(this.generation);
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    async more() {
      if (this.data.loading || this.data.loadingMore || this.data.done || this.data.error) return;
      this.setData({ loadingMore: true });
      try {
        await this.fetch(this.generation);
      } catch (err) {
        this.setData({ loadingMore: false });
        api.showError(err);
      }
    },
    async fetch(generation) {
      let path = `/api/v1/accounts/${this.accountId}/records?type=${this.data.type}&limit=${PAGE}`;
      if (this.data.cursor) path += `&cursor=${encodeURIComponent(this.data.cursor)}`;
      const page = await api.get(path);
      if (generation !== this.generation) return;
      this.setData({
        items: this.data.items.concat(page.items.map(recordView)),
        cursor: page.next_cursor,
        done: !page.next_cursor,
        loading: false,
        loadingMore: false,
      });
    },
  },
});
