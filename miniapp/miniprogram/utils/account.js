// Which of the tenant's accounts the pages show: kept in storage so the tabs agree.
const KEY = 'shuidian.account';

function currentAccountId() {
  return wx.getStorageSync(KEY) || null;
}

function setCurrentAccountId(id) {
  if (id) wx.setStorageSync(KEY, id);
  else wx.removeStorageSync(KEY);
}

// The account to show among `accounts` (the stored one if still bound, else the first).
function pickAccount(accounts) {
  if (!accounts || !accounts.length) {
    setCurrentAccountId(null);
    return null;
  }
  const stored = currentAccountId();
  const chosen = accounts.find((a) => a.id === stored) || accounts[0];
  setCurrentAccountId(chosen.id);
  return chosen;
}

module.exports = { currentAccountId, setCurrentAccountId, pickAccount };
