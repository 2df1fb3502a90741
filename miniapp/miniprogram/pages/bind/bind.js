// 绑定: site + account number + the SMS code sent to the phone on file, or a scanned QR code
// from the park's staff (a signed one-use ticket).
const api = require('../../utils/request');
const { setCurrentAccountId } = require('../../utils/account');

// What the QR code says: the ticket itself, or a link carrying it as ?ticket=
function ticketFrom(scanned) {
  const text = String(scanned || '').trim();
  const m = /[?&]ticket=([^&#]+)/.exec(text);
  return m ? decodeURIComponent(m[1]) : text;
}

Component({
  data: {
    loading: true,
    error: '',
    sites: [],
    siteNames: [],
    siteIndex: -1,
    number: '',
    code: '',
    phoneMasked: '',
    countdown: 0,
    sending: false,
    verifying: false,
    scanning: false,
  },
  lifetimes: {
    detached() {
      this.stopCountdown();
    },
  },
  methods: {
    onLoad() {
      return this.load();
    },
    onUnload() {
      this.stopCountdown();
    },
    async load() {
      this.setData({ loading: true, error: '' });
      try {
        const { items } = await api.get('/api/v1/sites');
        this.setData({
          loading: false,
          sites: items,
          siteNames: items.map((s) => (s.organisation ? `${s.name}（${s.organisation}）` : s.name)),
          siteIndex: items.length === 1 ? 0 : -1,
        });
      } catch (err) {
        this.setData({ loading: false, error: err.message });
      }
    },
    onSite(e) {
      this.setData({ siteIndex: Number(e.detail.value) });
    },
    onNumber(e) {
      this.setData({ number: String(e.detail).trim() });
    },
    onCode(e) {
      this.setData({ code: String(e.detail).trim() });
    },
    // {site_id, account_number}, or null after telling the tenant what is missing
    target() {
      const site = this.data.sites[this.data.siteIndex];
      if (!site) {
        wx.showToast({ title: '请选择园区', icon: 'none' });
        return null;
      }
      if (!this.data.number) {
        wx.showToast({ title: '请输入户号', icon: 'none' });
        return null;
      }
      return { site_id: site.id, account_number: this.data.number };
    },
    async onSend() {
      if (this.data.sending || this.data.countdown > 0) return;
      const target = this.target();
      if (!target) return;
      this.setData({ sending: true });
      try {
        const sent = await api.post('/api/v1/bind/sms/send', target);
        this.setData({ phoneMasked: sent.phone_masked });
        this.startCountdown(sent.resend_after || 60);
        wx.showToast({ title: `验证码已发送至 ${sent.phone_masked}`, icon: 'none' });
      } catch (err) {
        if (err.error === 'too_many_codes' && err.detail.retry_after) this.startCountdown(err.detail.retry_after);
        api.showError(err);
      } finally {
        this.setData({ sending: false });
      }
    },
    startCountdown(seconds) {
      this.stopCountdown();
      this.setData({ countdown: seconds });
      this.timer = setInterval(() => {
        const left = this.data.countdown - 1;
        this.setData({ countdown: Math.max(left, 0) });
        if (left <= 0) this.stopCountdown();
      }, 1000);
    },
    stopCountdown() {
      if (this.timer) clearInterval(this.timer);
      this.timer = null;
    },
    async onVerify() {
      if (this.data.verifying) return;
      const target = this.target();
      if (!target) return;
      if (!/^\d{6}$/.test(this.data.code)) {
        wx.showToast({ title: '请输入 6 位验证码', icon: 'none' });
        return;
      }
      this.setData({ verifying: true });
      try {
        const { account } = await api.post('/api/v1/bind/sms/verify', { ...target, code: this.data.code });
        this.bound(account);
      } catch (err) {
        if (err.error === 'code_wrong' && err.detail.tries_left !== undefined) {
          wx.showToast({ title: `${err.message}，还可尝试 ${err.detail.tries_left} 次`, icon: 'none' });
        } else {
          api.showError(err);
        }
      } finally {
        this.setData({ verifying: false });
      }
    },
    async onScan() {
      if (this.data.scanning) return;
      let scanned;
      try {
        scanned = await new Promise((resolve, reject) => wx.scanCode({ scanType: ['qrCode'], success: resolve, fail: reject }));
      } catch (err) {
        return; // the tenant closed the camera
      }
      this.setData({ scanning: true });
      try {
        const { account } = await api.post('/api/v1/bind/qr', { ticket: ticketFrom(scanned.result) });
        this.bound(account);
      } catch (err) {
        api.showError(err);
      } finally {
        this.setData({ scanning: false });
      }
    },
    bound(account) {
      this.stopCountdown();
      setCurrentAccountId(account.id);
      wx.showToast({ title: `已绑定 ${account.number}`, icon: 'success' });
      wx.switchTab({ url: '/pages/index/index' });
    },
  },
});
