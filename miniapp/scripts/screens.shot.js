// `npm run screens`, step 1 (run by jest in jsdom, see scripts/screens.js): each page rendered
// by miniprogram-simulate from the fixtures the tests use, its WXML turned into an HTML file
// with the page's compiled WXSS, app.wxss and the rpx units a 375-pt phone shows.
const fs = require('fs');
const path = require('path');
const wxssLib = require('miniprogram-simulate/src/wxss');
const { summary, detail } = require('../test/fixtures');

const MP = path.join(__dirname, '..', 'miniprogram');
let installWx;
let renderPage;
let settle;

// A fresh module registry per page: jest keeps required modules, and Vant's Component()
// calls must run again for each page the simulator loads.
function fresh() {
  jest.resetModules();
  document.head.innerHTML = '';
  ({ installWx, renderPage, settle } = require('../test/helpers/wx'));
}

const OUT = process.env.SCREENS_HTML;
const TITLES = { index: '首页', recharge: '充值', usage: '用电用水', records: '记录', bind: '绑定户号', me: '我的' };
const TABS = ['index', 'usage', 'records', 'me'];
const TAB_TEXT = { index: '首页', usage: '用电', records: '记录', me: '我的' }; // app.json tabBar

const rpx = (css) => css.replace(/(-?\d*\.?\d+)rpx/g, (_, n) => `${Number(n) / 2}px`);
// Our own WXSS (page, app, chart) compiled here with rpx as a 375-pt phone shows it; the
// simulator's copy (rpx read as px) is left out. Vant's WXSS is in px and taken as it is.
const ours = (file, prefix) => wxssLib.compile(rpx(fs.readFileSync(path.join(MP, file), 'utf8')), { prefix });

function html(name, page, extraHead = '') {
  const simulated = [
    wxssLib.compile(wxssLib.getContent(path.join(MP, 'pages', name, `${name}.wxss`)), { prefix: 'main' }),
    wxssLib.compile(wxssLib.getContent(path.join(MP, 'components/usage-chart/usage-chart.wxss')), { prefix: 'usage-chart' }),
  ];
  const styles = Array.from(document.querySelectorAll('style'))
    .map((s) => simulated.reduce((css, part) => css.split(part).join(''), s.textContent)).join('\n');
  const appWxss = ours('app.wxss', 'main').replace(/(^|[\s,}])page\s*\{/g, '$1body {');
  const own = ours(`pages/${name}/${name}.wxss`, 'main') + ours('components/usage-chart/usage-chart.wxss', 'usage-chart');
  const tab = TABS.includes(name)
    ? `<div class="tabbar">${TABS.map((t) => `<div class="${t === name ? 'on' : ''}">${TAB_TEXT[t]}</div>`).join('')}</div>` : '';
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
wx-view, wx-scroll-view, wx-label, wx-picker, wx-form, van-tabs, van-sticky { display: block; }
wx-text { display: inline; }
wx-scroll-view { width: 100%; } /* as WeChat's scroll-view base style */
wx-input { display: block; min-height: 24px; }
wx-image, van-icon { display: none; } /* Vant's icon font and images load from its CDN in WeChat */
body { margin: 0; width: 375px; }
.navbar { height: 44px; line-height: 44px; text-align: center; color: #fff; background: #1989fa; font-size: 17px; font-weight: 500; }
.tabbar { width: 375px; display: flex; background: #fff; border-top: 1px solid #ebedf0; }
.tabbar div { flex: 1; text-align: center; padding: 14px 0; color: #646566; font-size: 13px; }
.tabbar div.on { color: #1989fa; font-weight: 600; }
.content { min-height: 560px; }
${appWxss}
${styles}
${own}
</style>${extraHead}</head><body><div class="navbar">${TITLES[name]}</div><div class="content">${page.dom.outerHTML}</div>${tab}</body></html>`;
}

function save(file, text) {
  fs.mkdirSync(OUT, { recursive: true });
  fs.writeFileSync(path.join(OUT, file), text);
}

function installed(routes) {
  fresh();
  const env = installWx(routes);
  env.storage.set(require('../miniprogram/utils/request').TOKEN_KEY, 't');
  env.storage.set('shuidian.account', 12);
  return env;
}

const ACCOUNTS = [summary(), summary({ id: 13, site: { id: 1, name: '星河产业园' }, number: 'B-0202', tenant_name: '李氏五金', role: 'accountant', available_fen: 8800 })];

test('render the pages', async () => {
  installed({ 'GET /api/v1/accounts': { data: { items: ACCOUNTS } }, 'GET /api/v1/accounts/12': { data: detail({ available_fen: 23456, balance_fen: 23456 }) } });
  let page = renderPage('index');
  await page.instance.onShow();
  await settle();
  save('index.html', html('index', page));

  installed({
    'GET /api/v1/accounts/12': { data: detail() },
    'GET /api/v1/accounts/12/recharge/options': { data: { choices_fen: [5000, 10000, 20000, 50000, 100000, 200000], min_fen: 100, max_fen: 500000, channels: ['wechat'] } },
  });
  page = renderPage('recharge');
  await page.instance.onLoad({ account: '12' });
  await settle();
  page.querySelectorAll('.choice')[1].dispatchEvent('tap');
  await settle();
  page.setData({ result: { status: 'paid', title: '充值成功', message: '已到账 ¥100.00' } });
  await settle();
  save('recharge.html', html('recharge', page));

  const quantities = ['9.9', '10.2', '12.8', '9.6', '11.1', '13.4', '8.9', '10.7', '12.0', '14.3', '9.8', '11.6', '12.3', '10.1', '12.34'];
  const days = quantities.map((q, i) => {
    const day = new Date(Date.UTC(2026, 10, 20 + i)).toISOString().slice(0, 10); // 2026-11-20 …
    return { period: day, quantity: `${q}00`, amount_fen: Math.round(Number(q) * 60), bands: null };
  });
  installed({
    'GET /api/v1/accounts/12': { data: detail() },
    'GET /api/v1/accounts/12/meters/7/usage': { data: { meter_id: 7, kind: 'electricity', unit: 'kWh', by: 'day', items: days } },
  });
  page = renderPage('usage');
  await page.instance.onShow();
  await settle();
  const chart = { categories: page.data.categories, values: page.data.values };
  save('usage.html', html('usage', page, `<script>window.CHART = ${JSON.stringify(chart)};</script>`));

  const rec = (i, type, title, amount, at, extra = '') => ({ id: `r${i}`, type, title, amount_fen: amount, at, day: at.slice(0, 10), detail: extra });
  installed({
    'GET /api/v1/accounts/12/records': { data: { items: [
      rec(1, 'deduction', '电费', -740, '2026-12-04T23:59:59+08:00', '电 12.34 kWh'),
      rec(2, 'deduction', '水费', -135, '2026-12-04T23:59:59+08:00', '水 0.4 m³'),
      rec(3, 'recharge', '微信充值', 10000, '2026-12-04T10:21:08+08:00'),
      rec(4, 'deduction', '电费', -630, '2026-12-03T23:59:59+08:00', '电 10.5 kWh'),
      rec(5, 'fee', '公摊电费', -1200, '2026-12-01T09:00:00+08:00', '11 月公共区域'),
      rec(6, 'refund', '退款', 500, '2026-11-30T16:40:00+08:00', '多扣水费退回'),
    ], next_cursor: null } },
  });
  page = renderPage('records');
  await page.instance.onShow();
  await settle();
  save('records.html', html('records', page));

  installed({ 'GET /api/v1/sites': { data: { items: [{ id: 1, name: '星河产业园', organisation: '星河物业' }] } } });
  page = renderPage('bind');
  await page.instance.onLoad();
  await settle();
  page.setData({ phoneMasked: '138****5678', countdown: 57 }); // inputs are drawn empty here
  await settle();
  save('bind.html', html('bind', page));

  installed({
    'GET /api/v1/me': { data: { identity_id: 1, nickname: '张先生', accounts: ACCOUNTS } },
    'GET /api/v1/me/subscriptions': { data: { templates: [
      { template_id: 'a', purpose: 'low_balance', title: '余额不足提醒', remaining: 2 },
      { template_id: 'b', purpose: 'power_off', title: '断电/关阀通知', remaining: 0 },
      { template_id: 'c', purpose: 'recharge_done', title: '充值成功通知', remaining: 1 },
    ] } },
  });
  page = renderPage('me');
  await page.instance.onShow();
  await settle();
  save('me.html', html('me', page));

  installed({ 'GET /api/v1/accounts': { data: { items: [] } } });
  page = renderPage('index');
  await page.instance.onShow();
  await settle();
  save('index-empty.html', html('index', page));
});
