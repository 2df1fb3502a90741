// A page that shows the server's data: loaded whenever it is shown, again on pull-to-refresh.
// The page names its loader `load()`; its own onShow, if it has one, takes precedence.
module.exports = Behavior({
  methods: {
    onShow() {
      return this.load();
    },
    async onPullDownRefresh() {
      try {
        await this.load();
      } finally {
        wx.stopPullDownRefresh();
      }
    },
  },
});
