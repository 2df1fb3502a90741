// 我的: the bound accounts (unbind after a confirmation), alarm subscriptions (WeChat grants
// are one message each: ask again when they run out) and logging out.
const api = require('../../utils/request');
const fmt = require('../../utils/format');
const { currentAccountId, setCurrentAccountId } = require('../../utils/account');
const refreshable = require('../../behaviors/refreshable');

const ROLES = { owner: '户主', accountant: '财务' };

function confirm(options) {
  return new Promise((resolve) => {
    wx.showModal({ ...options, success: (res) => resolve(!!res.confirm), fail: () => resolve(false) });
  });
}

function templatesView(templates) {
  return templates.map((t) => ({ id: t.template_id, title: t.title, remaining: t.remaining, left: t.remaining > 0 ? `剩余 ${t.remaining} 次` : '未订阅' }));
}

Component({
  behaviors: [refreshable],
  data: {
    loading: true,
    error: '',
    loggedOut: false,
    nickname: '',
    accounts: [],
    templates: [],
    subscribing: false,
  },
  methods: {
    onShow() {
      if (this.data.loggedOut) return undefined;
      return this.load();
    },
    async load() {
      this.setData({ loading: true, error: '', loggedOut: false });
      try {
        const [me, subs] = await Promise.all([api.get('/api/v1/me'), api.get('/api/v1/me/subscriptions')]);
        this.setData({
          loading: false,
          nickname: me.nickname || '微信用户',
          accounts: me.accounts.map((a) => ({
            id: a.id, number: a.number, site: a.site.name, tenantName: a.tenant_name,
            role: ROLES[a.role] || a.role, available: fmt.money(a.available_fen),
          })),
          templates: templatesView(subs.templates),
        });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    async onUnbind(e) {
      const id = Number(e.currentTarget.dataset.id);
      const account = this.data.accounts.find((a) => a.id === id);
      if (!account) return;
      const ok = await confirm({
        title: '解除绑定',
        content: `确定解除与户号 ${account.number}（${account.tenantName}）的绑定？解除后需重新验证才能查看和充值。`,
        confirmText: '解除',
        confirmColor: '#ee0a24',
      });
      if (!ok) return;
      try {
        await api.del(`/api/v1/accounts/${id}/binding`);
        if (currentAccountId() === id) setCurrentAccountId(null);
        wx.showToast({ title: '已解除绑定', icon: 'success' });
        await this.load();
      } catch (err) {
        api.showError(err);
      }
    },
    onBind() {
      wx.navigateTo({ url: '/pages/bind/bind' });
    },
    onInvoices() {
      wx.navigateTo({ url: `/pages/invoice/invoice?account=${currentAccountId() || ''}` });
    },
    onCompliance() {
      wx.navigateTo({ url: '/pages/compliance/compliance' });
    },
    async onSubscribe() {
      const ids = this.data.templates.map((t) => t.id);
      if (!ids.length || this.data.subscribing) return;
      this.setData({ subscribing: true });
      try {
        const answer = await new Promise((resolve, reject) => wx.requestSubscribeMessage({ tmplIds: ids.slice(0, 3), success: resolve, fail: reject }));
        const results = {};
        for (const id of ids) if (answer[id]) results[id] = answer[id];
        const subs = await api.post('/api/v1/me/subscriptions', { results });
        this.setData({ templates: templatesView(subs.templates) });
        const accepted = Object.values(results).filter((r) => r === 'accept').length;
        wx.showToast({ title: accepted ? '订阅成功' : '未订阅任何提醒', icon: accepted ? 'success' : 'none' });
      } catch (err) {
        if (err instanceof api.ApiError) api.showError(err);
        else wx.showToast({ title: '未能打开订阅，请稍后重试', icon: 'none' });
      } finally {
        this.setData({ subscribing: false });
      }
    },
    async onLogout() {
      const ok = await confirm({ title: '退出登录', content: '退出后再次打开小程序将重新登录。' });
      if (!ok) return;
      try {
        await api.logout();
      } catch (err) {
        // the token is forgotten here whatever the server answered
      }
      setCurrentAccountId(null);
      this.setData({ loggedOut: true, accounts: [], templates: [], nickname: '' });
    },
  },
});
