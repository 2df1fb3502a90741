#!/usr/bin/env node
// Builds miniprogram/miniprogram_npm/ from node_modules, as WeChat DevTools' "构建 npm" would
// (it does not run on Linux). Only the Vant Weapp components the pages use are copied, with
// every file they reach (usingComponents, require(), <wxs src>, @import); uCharts ships as an
// ES module only, so its `export default` becomes `module.exports` for the mini-program's
// CommonJS `require` (and jest's). The output is committed; test/build-npm.test.js checks
// the committed copy is byte-identical to what this script builds from the locked packages.
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = path.resolve(__dirname, '..');
const NODE_MODULES = path.join(ROOT, 'node_modules');
const DEFAULT_OUT = path.join(ROOT, 'miniprogram', 'miniprogram_npm');

// The Vant components referenced from the pages' and components' .json files.
const VANT_COMPONENTS = [
  'button', 'cell', 'cell-group', 'empty', 'field', 'loading', 'notice-bar', 'tab', 'tabs',
  'tag',
];
const VANT_LIB = path.join(NODE_MODULES, '@vant', 'weapp', 'lib');
const UCHARTS_SRC = path.join(NODE_MODULES, '@qiun', 'ucharts', 'u-charts.js');

function exists(file) {
  return fs.existsSync(file) && fs.statSync(file).isFile();
}

// Files a Vant file refers to, as absolute paths (resolved like the mini-program does).
function references(file) {
  const text = fs.readFileSync(file, 'utf8');
  const dir = path.dirname(file);
  const found = [];
  const add = (ref, exts) => {
    if (!ref.startsWith('.')) return; // wx:// built-ins and the like
    const base = path.resolve(dir, ref);
    const candidates = [base, ...exts.map((ext) => base + ext), ...exts.map((ext) => path.join(base, 'index' + ext))];
    const hit = candidates.find(exists);
    if (!hit) throw new Error(`${path.relative(VANT_LIB, file)}: cannot resolve ${ref}`);
    found.push(hit);
  };
  const ext = path.extname(file);
  if (ext === '.json') {
    const using = JSON.parse(text).usingComponents || {};
    for (const ref of Object.values(using)) {
      for (const e of ['.js', '.json', '.wxml', '.wxss']) add(ref + e, []);
    }
  } else if (ext === '.js' || ext === '.wxs') {
    for (const m of text.matchAll(/require\(\s*['"]([^'"]+)['"]\s*\)/g)) add(m[1], ['.js', '.wxs']);
  } else if (ext === '.wxml') {
    for (const m of text.matchAll(/<(?:wxs|import|include)\b[^>]*\bsrc\s*=\s*['"]([^'"]+)['"]/g)) add(m[1], ['.wxs', '.wxml']);
  } else if (ext === '.wxss') {
    for (const m of text.matchAll(/@import\s+['"]([^'"]+)['"]/g)) add(m[1], ['.wxss']);
  }
  return found;
}

function vantFiles() {
  const todo = [];
  for (const name of VANT_COMPONENTS) {
    for (const e of ['.js', '.json', '.wxml', '.wxss']) {
      const file = path.join(VANT_LIB, name, 'index' + e);
      if (exists(file)) todo.push(file);
    }
  }
  const seen = new Set();
  while (todo.length) {
    const file = todo.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    todo.push(...references(file));
  }
  return [...seen].sort();
}

function uchartsCommonJs() {
  const source = fs.readFileSync(UCHARTS_SRC, 'utf8');
  const esm = /^export default uCharts;\s*$/m;
  if (!esm.test(source) || /^\s*(import|export)\s/m.test(source.replace(esm, ''))) {
    throw new Error('@qiun/ucharts: expected one `export default uCharts;` and no other import/export');
  }
  return source.replace(esm, 'module.exports = uCharts;\n');
}

// { relative path under miniprogram_npm: Buffer }
function buildFiles() {
  const files = {};
  for (const file of vantFiles()) {
    files[path.posix.join('@vant', 'weapp', path.relative(VANT_LIB, file).split(path.sep).join('/'))] = fs.readFileSync(file);
  }
  files['@qiun/ucharts/index.js'] = Buffer.from(uchartsCommonJs(), 'utf8');
  return files;
}

function build(outDir = DEFAULT_OUT) {
  fs.rmSync(outDir, { recursive: true, force: true });
  const files = buildFiles();
  for (const [rel, content] of Object.entries(files)) {
    const target = path.join(outDir, rel);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    fs.writeFileSync(target, content);
  }
  return Object.keys(files).sort();
}

module.exports = { build, buildFiles, VANT_COMPONENTS };

if (require.main === module) {
  const written = build(process.argv[2] ? path.resolve(process.argv[2]) : DEFAULT_OUT);
  console.log(`miniprogram_npm: ${written.length} files`);
}
