// Where the mini-program finds the Shuidian server, and the development switches.
module.exports = {
  // The tenant API's origin, without a trailing slash (`./run demo` listens on :8000).
  baseUrl: 'http://127.0.0.1:8000',
  // Milliseconds before a request is given up ("请求超时").
  timeout: 10000,
  // After the payment sheet closes: ask for the order's status every pollInterval ms, at most
  // pollTimes times, until it is paid, closed or expired (the notification may lag the sheet).
  pollInterval: 1500,
  pollTimes: 20,
  // Development only: sent to POST /api/v1/auth/login instead of wx.login's code. The demo's
  // fake WeChat accepts codes like "demo-zhang", but WeChat DevTools' wx.login gives real
  // codes it has never seen. Leave empty ('') for a real AppID and server.
  devLoginCode: '',
};
