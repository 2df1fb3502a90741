// `wx` for the contract test: wx.request over Node's real HTTP, storage in memory, and
// wx.login asking the control server for a code its fake WeChat API will accept.
const http = require('http');

function nodeRequest({ url, method = 'GET', data, header = {}, timeout, success, fail }) {
  const body = data === undefined ? undefined : JSON.stringify(data);
  const headers = { ...header };
  if (body !== undefined) headers['Content-Length'] = Buffer.byteLength(body);
  const req = http.request(new URL(url), { method, headers, timeout }, (res) => {
    const chunks = [];
    res.on('data', (c) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      let parsed = text;
      try {
        parsed = text ? JSON.parse(text) : '';
      } catch (err) {
        // not JSON: handed over as text, like wx.request does
      }
      success({ statusCode: res.statusCode, data: parsed, header: res.headers });
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (err) => fail({ errMsg: `request:fail ${err.message}` }));
  if (body !== undefined) req.write(body);
  req.end();
}

// JSON to/from the control server (not through our request module: it is not the API).
function control(base, method, path, data) {
  return new Promise((resolve, reject) => {
    nodeRequest({
      url: base + path,
      method,
      data,
      header: { 'Content-Type': 'application/json' },
      timeout: 30000,
      success: (res) => (res.statusCode < 300 ? resolve(res.data) : reject(new Error(`${method} ${path}: ${res.statusCode} ${JSON.stringify(res.data)}`))),
      fail: (err) => reject(new Error(err.errMsg)),
    });
  });
}

function installNodeWx(controlBase) {
  const storage = new Map();
  const wx = {
    request: nodeRequest,
    login: ({ success, fail }) => control(controlBase, 'POST', '/wechat/code', {}).then((r) => success({ code: r.code }), (err) => fail({ errMsg: err.message })),
    getStorageSync: (k) => (storage.has(k) ? storage.get(k) : ''),
    setStorageSync: (k, v) => storage.set(k, v),
    removeStorageSync: (k) => storage.delete(k),
    showToast: () => {},
  };
  global.wx = wx;
  return { wx, storage };
}

module.exports = { installNodeWx, control, nodeRequest };
