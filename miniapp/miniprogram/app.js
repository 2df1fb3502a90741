// The mini-program's entry: the pages log in on their first request (utils/request.js).
App({
  globalData: {},
});
