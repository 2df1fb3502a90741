#!/usr/bin/env node
// `npm run screens`: renders every page with miniprogram-simulate (scripts/screens.shot.js,
// under jest and jsdom) to HTML, then photographs each in headless Chromium into docs/*.png.
// The chart is drawn by the same uCharts build the mini-program uses, on an HTML canvas.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const DOCS = path.join(ROOT, 'docs');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

async function main() {
  const htmlDir = fs.mkdtempSync(path.join(os.tmpdir(), 'miniapp-screens-'));
  execFileSync(process.execPath, [require.resolve('jest/bin/jest'), '--rootDir', ROOT, '--testMatch', '<rootDir>/scripts/screens.shot.js', '--silent'], {
    cwd: ROOT, stdio: 'inherit', env: { ...process.env, SCREENS_HTML: htmlDir },
  });
  const { chromium } = require('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  const uCharts = fs.readFileSync(path.join(ROOT, 'miniprogram', 'miniprogram_npm', '@qiun', 'ucharts', 'index.js'), 'utf8');
  try {
    const page = await browser.newPage({ viewport: { width: 375, height: 720 }, deviceScaleFactor: 2 });
    fs.mkdirSync(DOCS, { recursive: true });
    for (const file of fs.readdirSync(htmlDir).sort()) {
      await page.goto(`file://${path.join(htmlDir, file)}`);
      await page.evaluate((source) => {
        if (!window.CHART) return;
        const module = { exports: {} };
        new Function('module', 'exports', source)(module, module.exports); // eslint-disable-line no-new-func
        const UCharts = module.exports;
        document.querySelectorAll('wx-canvas').forEach((el) => {
          const canvas = document.createElement('canvas');
          const width = 327; // 375 less the card's margins and padding
          const height = 220;
          canvas.width = width * 2;
          canvas.height = height * 2;
          canvas.style.width = `${width}px`;
          canvas.style.height = `${height}px`;
          el.replaceWith(canvas);
          new UCharts({
            type: 'column', context: canvas.getContext('2d'), width: width * 2, height: height * 2, pixelRatio: 2,
            categories: window.CHART.categories, series: [{ name: 'kWh', data: window.CHART.values }],
            animation: false, background: '#FFFFFF', color: ['#1989fa'], padding: [15, 10, 0, 5],
            legend: { show: false }, dataLabel: false, xAxis: { disableGrid: true, labelCount: 7 },
            yAxis: { data: [{ min: 0 }] }, extra: { column: { type: 'group', width: 16 } },
          });
        });
      }, uCharts);
      const png = path.join(DOCS, file.replace(/\.html$/, '.png'));
      await page.screenshot({ path: png, fullPage: true });
      console.log(`docs/${path.basename(png)}`);
    }
  } finally {
    await browser.close();
    if (!process.env.KEEP_HTML) fs.rmSync(htmlDir, { recursive: true, force: true }); else console.log(htmlDir);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
