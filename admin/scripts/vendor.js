// Copies the built files of the pinned front-end packages (package-lock.json) into
// static/vendor/, with vendor.json naming each file's package, version and SHA-256.
// The copies are committed: the demo needs no Node and no CDN. tests/admin/test_vendor.py
// checks them against the lock and node_modules (`npm ci` in ./run test).
const crypto = require("crypto");
const fs = require("fs");
const path = require("path");

const FILES = {
  bootstrap: ["dist/css/bootstrap.min.css", "dist/js/bootstrap.bundle.min.js"],
  "htmx.org": ["dist/htmx.min.js"],
  echarts: ["dist/echarts.min.js"],
};

const root = path.join(__dirname, "..");
const out = path.join(root, "static", "vendor");
const lock = JSON.parse(fs.readFileSync(path.join(root, "package-lock.json"), "utf8"));
fs.mkdirSync(out, { recursive: true });
const manifest = {};
for (const [pkg, files] of Object.entries(FILES)) {
  const version = lock.packages[`node_modules/${pkg}`].version;
  for (const file of files) {
    const body = fs.readFileSync(path.join(root, "node_modules", pkg, file));
    const name = path.basename(file);
    fs.writeFileSync(path.join(out, name), body);
    const sha256 = crypto.createHash("sha256").update(body).digest("hex");
    manifest[name] = { package: pkg, version, source: file, sha256 };
  }
}
fs.writeFileSync(path.join(out, "vendor.json"), JSON.stringify(manifest, null, 2) + "\n");
console.log(`copied ${Object.keys(manifest).length} files into static/vendor/`);
