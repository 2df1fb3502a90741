// A column chart of usage per period, drawn by uCharts on a type="2d" canvas. The numbers
// are also in the page's table; the chart is only a picture of them.
const UCharts = require('../../miniprogram_npm/@qiun/ucharts/index');

Component({
  properties: {
    categories: { type: Array, value: [] },
    values: { type: Array, value: [] }, // numbers for drawing only (never money arithmetic)
    unit: { type: String, value: '' },
  },
  observers: {
    'categories, values': function () {
      this.draw();
    },
  },
  lifetimes: {
    ready() {
      this.draw();
    },
  },
  methods: {
    draw() {
      if (!this.data.categories.length) return;
      this.createSelectorQuery()
        .select('#chart')
        .fields({ node: true, size: true })
        .exec((res) => {
          const found = res && res[0];
          if (!found || !found.node || !found.width) return; // not laid out (or no canvas here)
          const dpr = wx.getSystemInfoSync().pixelRatio || 1;
          const canvas = found.node;
          canvas.width = found.width * dpr;
          canvas.height = found.height * dpr;
          this.chart = new UCharts({
            type: 'column',
            context: canvas.getContext('2d'),
            width: found.width * dpr,
            height: found.height * dpr,
            pixelRatio: dpr,
            categories: this.data.categories,
            series: [{ name: this.data.unit, data: this.data.values }],
            animation: false,
            background: '#FFFFFF',
            color: ['#1989fa'],
            padding: [15, 10, 0, 5],
            legend: { show: false },
            dataLabel: this.data.categories.length <= 12,
            xAxis: { disableGrid: true, labelCount: 6 },
            yAxis: { data: [{ min: 0 }] },
            extra: { column: { type: 'group', width: 16 } },
          });
        });
    },
  },
});
