// The WeChat platform, mocked for jest: `wx.*` and an HTTP layer behind wx.request that
// answers from per-test routes and records every call. Our own modules run unmocked.
const path = require('path');
const simulate = require('miniprogram-simulate');

const ROOT = path.resolve(__dirname, '..', '..', 'miniprogram');

// The layout queries Vant makes: every node measures 0 (there is no layout in jsdom).
function selectorQuery() {
  const results = [];
  const query = {
    in: () => query,
    select: () => query,
    selectAll: () => query,
    selectViewport: () => query,
    boundingClientRect: () => { results.push({ width: 0, height: 0, top: 0, left: 0, right: 0, bottom: 0 }); return query; },
    fields: () => { results.push({ width: 0, height: 0, node: null }); return query; },
    scrollOffset: () => { results.push({ scrollTop: 0, scrollLeft: 0 }); return query; },
    exec: (cb) => { setTimeout(() => cb && cb(results), 0); return query; },
  };
  return query;
}

// routes: { 'GET /api/v1/accounts': handler | answer }, where a handler gets
// {method, path, query, data, header} and returns {status, data} or {fail: 'request:fail …'}.
function installWx(routes = {}) {
  const storage = new Map();
  const calls = [];
  const server = {
    routes: { 'POST /api/v1/auth/login': { status: 200, data: { token: 'tok-1', expires_at: '2026-12-06T00:00:00+08:00', identity: { id: 1, accounts: 1 } } }, ...routes },
    calls,
    // the requests to one route, e.g. server.to('POST /api/v1/auth/login')
    to(key) {
      return calls.filter((c) => `${c.method} ${c.path}` === key);
    },
  };
  const wx = {
    request: jest.fn((opts) => {
      const url = new URL(opts.url);
      const call = {
        method: opts.method || 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        data: opts.data,
        header: opts.header || {},
        timeout: opts.timeout,
      };
      calls.push(call);
      const route = server.routes[`${call.method} ${call.path}`];
      setTimeout(() => {
        const answer = typeof route === 'function' ? route(call) : route;
        if (!answer) opts.success({ statusCode: 404, data: { error: 'not_found', message: '未找到', detail: {} } });
        else if (answer.fail) opts.fail({ errMsg: answer.fail });
        else opts.success({ statusCode: answer.status || 200, data: answer.data === undefined ? '' : answer.data });
      }, 0);
      return { abort() {} };
    }),
    // Downloads answer from the same routes: {status, file} (the temporary file's path).
    downloadFile: jest.fn((opts) => {
      const url = new URL(opts.url);
      const call = { method: 'GET', path: url.pathname, query: Object.fromEntries(url.searchParams), header: opts.header || {} };
      calls.push(call);
      const route = server.routes[`GET ${call.path}`];
      setTimeout(() => {
        const answer = typeof route === 'function' ? route(call) : route;
        if (answer && answer.fail) opts.fail({ errMsg: answer.fail });
        else opts.success({ statusCode: answer ? answer.status || 200 : 404, tempFilePath: (answer && answer.file) || 'wxfile://tmp/download' });
      }, 0);
      return { abort() {} };
    }),
    openDocument: jest.fn(({ success }) => success && success({ errMsg: 'openDocument:ok' })),
    login: jest.fn(({ success }) => success({ code: 'wx-code-1', errMsg: 'login:ok' })),
    getStorageSync: jest.fn((k) => (storage.has(k) ? storage.get(k) : '')),
    setStorageSync: jest.fn((k, v) => storage.set(k, v)),
    removeStorageSync: jest.fn((k) => storage.delete(k)),
    showToast: jest.fn(),
    showLoading: jest.fn(),
    hideLoading: jest.fn(),
    showModal: jest.fn(({ success }) => success && success({ confirm: true, cancel: false })),
    navigateTo: jest.fn(),
    navigateBack: jest.fn(),
    switchTab: jest.fn(),
    reLaunch: jest.fn(),
    stopPullDownRefresh: jest.fn(),
    requestPayment: jest.fn(({ success }) => success({ errMsg: 'requestPayment:ok' })),
    requestSubscribeMessage: jest.fn(),
    scanCode: jest.fn(),
    // An SDK below 2.4 keeps Vant off groupSetData, which the simulator's components lack.
    getSystemInfoSync: () => ({ SDKVersion: '2.3.0', pixelRatio: 2, windowWidth: 375, windowHeight: 667, platform: 'devtools' }),
    getWindowInfo: () => ({ pixelRatio: 2, windowWidth: 375, windowHeight: 667 }),
    canIUse: () => false,
    nextTick: (fn) => setTimeout(fn, 0),
    createSelectorQuery: () => selectorQuery(),
    createAnimation: () => {
      const animation = new Proxy({}, { get: (_, key) => (key === 'export' ? () => ({ actions: [] }) : () => animation) });
      return animation;
    },
  };
  global.wx = wx;
  global.getCurrentPages = () => [];
  return { wx, server, storage };
}

const loaded = {}; // jest keeps required modules: a page's Component() runs once per test file

// Loads (once) and attaches a page (written with Component()) as the simulator renders it.
function renderPage(name, properties) {
  if (!loaded[name]) loaded[name] = simulate.load(path.join(ROOT, 'pages', name, name), { rootPath: ROOT });
  const id = loaded[name];
  const page = simulate.render(id, properties);
  page.attach(document.createElement('parent-wrapper'));
  return page;
}

// Lets queued requests and setData settle.
async function settle(times = 5) {
  for (let i = 0; i < times; i++) await simulate.sleep(0);
}

function text(page) {
  return page.dom.textContent.replace(/\s+/g, ' ');
}

module.exports = { installWx, renderPage, settle, text, ROOT };
