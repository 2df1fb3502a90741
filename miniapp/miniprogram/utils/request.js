// The one way the mini-program talks to the server: base URL from config, bearer token kept
// in storage, one log-in again and one retry on 401, timeouts, and every failure turned into
// an ApiError carrying the server's {error, message, detail} with a Chinese message to show.
const config = require('../config');

const TOKEN_KEY = 'shuidian.token';

// Messages for failures the server did not (or could not) word itself.
const MESSAGES = {
  timeout: '请求超时，请检查网络后重试',
  network: '网络连接失败，请检查网络后重试',
  unauthorized: '登录已失效，请重新进入小程序',
  wechat_login_failed: '微信登录失败，请稍后重试',
  wechat_user_blocked: '该微信账号已被停用，如有疑问请联系园区物业',
  sms_unavailable: '短信服务暂不可用，请稍后再试或扫描物业提供的二维码绑定',
  server: '服务器开小差了，请稍后重试',
  unknown: '请求失败，请稍后重试',
};

class ApiError extends Error {
  constructor(status, error, message, detail) {
    super(message);
    this.name = 'ApiError';
    this.status = status; // HTTP status, 0 when no answer came
    this.error = error; // the server's code, or timeout / network
    this.detail = detail || {};
  }
}

function toError(status, body) {
  const data = body && typeof body === 'object' ? body : {};
  const code = typeof data.error === 'string' ? data.error : status >= 500 ? 'server' : 'unknown';
  // Codes whose consequences the tenant must understand get our wording, the rest the server's.
  const fixed = code === 'wechat_user_blocked' || code === 'sms_unavailable';
  const message = (!fixed && data.message) || MESSAGES[code] || (status === 401 ? MESSAGES.unauthorized : MESSAGES.unknown);
  return new ApiError(status, code, message, data.detail);
}

function getToken() {
  return wx.getStorageSync(TOKEN_KEY) || '';
}

function setToken(token) {
  if (token) wx.setStorageSync(TOKEN_KEY, token);
  else wx.removeStorageSync(TOKEN_KEY);
}

// One HTTP exchange through wx.request; resolves {status, data}, rejects ApiError on no answer.
function send(method, path, data, token) {
  return new Promise((resolve, reject) => {
    const header = { 'Content-Type': 'application/json' };
    if (token) header.Authorization = `Bearer ${token}`;
    wx.request({
      url: config.baseUrl + path,
      method,
      data,
      header,
      timeout: config.timeout,
      dataType: 'json',
      success: (res) => resolve({ status: res.statusCode, data: res.data }),
      fail: (err) => {
        const text = (err && err.errMsg) || '';
        const code = /timeout|超时/i.test(text) ? 'timeout' : 'network';
        reject(new ApiError(0, code, MESSAGES[code], { errMsg: text }));
      },
    });
  });
}

function wxLoginCode() {
  if (config.devLoginCode) return Promise.resolve(config.devLoginCode);
  return new Promise((resolve, reject) => {
    wx.login({
      success: (res) => (res.code ? resolve(res.code) : reject(new ApiError(0, 'wechat_login_failed', MESSAGES.wechat_login_failed))),
      fail: (err) => reject(new ApiError(0, 'wechat_login_failed', MESSAGES.wechat_login_failed, { errMsg: err && err.errMsg })),
    });
  });
}

let loggingIn = null; // one log-in at a time, shared by the requests that need it

// wx.login -> POST /api/v1/auth/login -> token in storage. Resolves the login answer.
function login() {
  if (!loggingIn) {
    loggingIn = wxLoginCode()
      .then((code) => send('POST', '/api/v1/auth/login', { code }, ''))
      .then(({ status, data }) => {
        if (status !== 200) throw toError(status, data);
        setToken(data.token);
        return data;
      })
      .finally(() => {
        loggingIn = null;
      });
  }
  return loggingIn;
}

// request('GET', '/api/v1/accounts') -> the answer's JSON (null for 204); rejects ApiError.
// options.auth = false sends no token and never logs in.
async function request(method, path, data, options = {}) {
  const auth = options.auth !== false;
  let token = auth ? getToken() : '';
  if (auth && !token) token = (await login()).token;
  let answer = await send(method, path, data, token);
  if (answer.status === 401 && auth) {
    setToken('');
    token = (await login()).token;
    answer = await send(method, path, data, token);
  }
  if (answer.status >= 200 && answer.status < 300) {
    return answer.status === 204 || answer.data === '' ? null : answer.data;
  }
  if (answer.status === 401 && auth) setToken('');
  throw toError(answer.status, answer.data);
}

async function logout() {
  try {
    if (getToken()) await request('POST', '/api/v1/auth/logout', undefined);
  } finally {
    setToken('');
  }
}

// One download through wx.downloadFile; resolves {status, file}, rejects ApiError on no answer.
function fetchFile(path, token) {
  return new Promise((resolve, reject) => {
    wx.downloadFile({
      url: config.baseUrl + path,
      header: token ? { Authorization: `Bearer ${token}` } : {},
      timeout: config.timeout,
      success: (res) => resolve({ status: res.statusCode, file: res.tempFilePath }),
      fail: (err) => {
        const text = (err && err.errMsg) || '';
        const code = /timeout|超时/i.test(text) ? 'timeout' : 'network';
        reject(new ApiError(0, code, MESSAGES[code], { errMsg: text }));
      },
    });
  });
}

// download('/api/v1/…/xlsx') -> the downloaded file's temporary path, with the token (one
// log-in again and one retry on 401, as `request`); rejects ApiError (the body is a file, so
// the message is ours).
async function download(path) {
  let token = getToken();
  if (!token) token = (await login()).token;
  let answer = await fetchFile(path, token);
  if (answer.status === 401) {
    setToken('');
    token = (await login()).token;
    answer = await fetchFile(path, token);
  }
  if (answer.status >= 200 && answer.status < 300) return answer.file;
  if (answer.status === 401) setToken('');
  throw toError(answer.status, null);
}

// Shows an error the way every page does: the server's Chinese message in a toast.
function showError(err) {
  const message = (err && err.message) || MESSAGES.unknown;
  wx.showToast({ title: message, icon: 'none', duration: 3000 });
}

module.exports = {
  ApiError,
  MESSAGES,
  TOKEN_KEY,
  request,
  get: (path, options) => request('GET', path, undefined, options),
  post: (path, data, options) => request('POST', path, data, options),
  del: (path, options) => request('DELETE', path, undefined, options),
  download,
  login,
  logout,
  getToken,
  setToken,
  showError,
};
