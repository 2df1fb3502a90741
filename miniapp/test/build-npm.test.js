// The committed miniprogram_npm/ must be exactly what scripts/build-npm.js builds from the
// locked packages (DevTools' "构建 npm" cannot run on Linux, so the built copy is committed).
const fs = require('fs');
const os = require('os');
const path = require('path');
const { build, VANT_COMPONENTS } = require('../scripts/build-npm');

const ROOT = path.resolve(__dirname, '..');
const COMMITTED = path.join(ROOT, 'miniprogram', 'miniprogram_npm');

function tree(dir) {
  const out = {};
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else out[path.relative(dir, full).split(path.sep).join('/')] = fs.readFileSync(full);
    }
  };
  walk(dir);
  return out;
}

test('node_modules holds the versions package-lock.json pins', () => {
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8'));
  for (const name of ['@vant/weapp', '@qiun/ucharts']) {
    const installed = JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')).version;
    expect(installed).toBe(lock.packages[`node_modules/${name}`].version);
  }
});

test('the committed miniprogram_npm is byte-identical to a fresh build', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'miniprogram_npm-'));
  try {
    build(out);
    const fresh = tree(out);
    const committed = tree(COMMITTED);
    expect(Object.keys(committed).sort()).toEqual(Object.keys(fresh).sort());
    const differing = Object.keys(fresh).filter((rel) => !fresh[rel].equals(committed[rel]));
    expect(differing).toEqual([]);
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});

test('every Vant component a page or component uses is built', () => {
  const used = new Set();
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.json')) {
        for (const ref of Object.values(JSON.parse(fs.readFileSync(full, 'utf8')).usingComponents || {})) {
          const m = /^\/miniprogram_npm\/@vant\/weapp\/([^/]+)\/index$/.exec(ref);
          if (m) used.add(m[1]);
        }
      }
    }
  };
  walk(path.join(ROOT, 'miniprogram', 'pages'));
  walk(path.join(ROOT, 'miniprogram', 'components'));
  expect([...used].sort()).toEqual([...VANT_COMPONENTS].sort());
});

test('uCharts is built as CommonJS', () => {
  const UCharts = require('../miniprogram/miniprogram_npm/@qiun/ucharts/index');
  expect(typeof UCharts).toBe('function');
});
