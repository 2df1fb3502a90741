const path = require('path');
const simulate = require('miniprogram-simulate');
const { installWx, settle, ROOT } = require('./helpers/wx');

// A 2d context that records what uCharts draws (the platform's canvas, mocked).
function recordingContext() {
  const calls = [];
  const ctx = new Proxy({}, {
    get(target, key) {
      if (key in target) return target[key];
      if (key === 'measureText') return (t) => ({ width: String(t).length * 6 });
      return (...args) => calls.push([key, ...args]);
    },
    set(target, key, value) {
      target[key] = value;
      return true;
    },
  });
  return { ctx, calls };
}

let chartId;
function renderChart() {
  if (!chartId) chartId = simulate.load(path.join(ROOT, 'components', 'usage-chart', 'usage-chart'), { rootPath: ROOT });
  return simulate.render(chartId);
}

afterEach(() => jest.useRealTimers());

test('draws the values as columns on a 2d canvas sized for the pixel ratio', async () => {
  installWx();
  const { ctx, calls } = recordingContext();
  const node = { getContext: () => ctx, width: 0, height: 0 };
  const chart = renderChart();
  chart.instance.createSelectorQuery = () => {
    const q = { select: () => q, fields: () => q, exec: (cb) => cb([{ node, width: 300, height: 200 }]) };
    return q;
  };
  chart.attach(document.createElement('parent-wrapper'));
  jest.useFakeTimers(); // uCharts draws on its next animation frame (a setTimeout)
  chart.setData({ categories: ['12-03', '12-04'], values: [10.5, 12.34], unit: 'kWh' });
  jest.runOnlyPendingTimers();
  expect(node.width).toBe(600); // 300 pt at pixel ratio 2
  expect(node.height).toBe(400);
  expect(chart.instance.chart.opts.categories).toEqual(['12-03', '12-04']);
  expect(chart.instance.chart.opts.series[0].data).toEqual([10.5, 12.34]);
  expect(calls.some(([name]) => name === 'fill')).toBe(true); // the columns
  expect(calls.filter(([name]) => name === 'fillText').map(([, t]) => t)).toEqual(expect.arrayContaining(['12-03', '12-04']));
});

test('draws nothing without data or before layout', async () => {
  installWx();
  const chart = renderChart();
  chart.attach(document.createElement('parent-wrapper'));
  chart.setData({ categories: ['12-03'], values: [1] });
  await settle();
  expect(chart.instance.chart).toBeUndefined(); // the simulator has no canvas node to draw on
});
