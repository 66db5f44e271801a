// The stated MSRV must be true: no crate the library builds on (the locked graph, all
// features, normal and build dependencies of `gotalk` and `gotalk-macros`, on Linux, macOS
// and Windows) may declare a higher `rust-version` than ours. (Clippy's `incompatible_msrv`
// checks our own code against it.)
//
//   cargo metadata --format-version 1 --locked --all-features \
//       --filter-platform x86_64-unknown-linux-gnu --filter-platform aarch64-apple-darwin \
//       --filter-platform x86_64-pc-windows-msvc | node .ci/msrv.js
'use strict';

const meta = JSON.parse(require('fs').readFileSync(0, 'utf8'));
const byId = new Map(meta.packages.map((p) => [p.id, p]));
const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]));
const version = (v) => (v || '0').split('.').map(Number);
const newer = (a, b) => {
  const [x, y] = [version(a), version(b)];
  for (let i = 0; i < 3; i++) if ((x[i] || 0) !== (y[i] || 0)) return (x[i] || 0) > (y[i] || 0);
  return false;
};

const roots = meta.packages.filter((p) => p.name === 'gotalk' || p.name === 'gotalk-macros');
const ours = roots[0].rust_version;
const seen = new Set();
const queue = roots.map((p) => p.id);
while (queue.length) {
  const id = queue.pop();
  if (seen.has(id)) continue;
  seen.add(id);
  for (const dep of nodes.get(id).deps) {
    if (dep.dep_kinds.some((k) => k.kind !== 'dev')) queue.push(dep.pkg);
  }
}
const needs = [...seen]
  .map((id) => byId.get(id))
  .filter((p) => p.rust_version)
  .sort((a, b) => (newer(a.rust_version, b.rust_version) ? -1 : newer(b.rust_version, a.rust_version) ? 1 : 0));
const highest = needs[0];
console.log(`stated rust-version ${ours}; ${seen.size} crates in the library's graph; highest needs:`);
for (const p of needs.slice(0, 5)) console.log(`  ${p.name} ${p.version}: ${p.rust_version}`);
if (highest && newer(highest.rust_version, ours)) {
  console.error(`rust-version ${ours} is not true: ${highest.name} ${highest.version} needs ${highest.rust_version}`);
  process.exit(1);
}
