// Snapshot test of the grammar on real policies: each shipped .rk file is tokenized with
// vscode-textmate (as VS Code does) and compared, token by token with its scopes, to the
// snapshot committed in test/snapshots/. The policies are read where they live, so a change
// to one shows up here. `node test/snapshot.js --update` rewrites the snapshots after a
// change to the grammar or to a policy has been looked at.
'use strict';

const fs = require('fs');
const path = require('path');
const { createRegistry, loadConfiguration } = require('vscode-tmgrammar-test/dist/common/index');
const { getVSCodeTokens, renderSnap } = require('vscode-tmgrammar-test/dist/snapshot/index');

const root = path.resolve(__dirname, '..', '..', '..');
const policies = [
  'rules/kuaishou_after_sales.rk',
  'examples/support_sla/support_sla.rk',
];
const snapshots = path.join(__dirname, 'snapshots');
const update = process.argv.includes('--update');

async function main() {
  const { grammars } = loadConfiguration(path.join(__dirname, '..', 'package.json'));
  const registry = createRegistry(grammars);
  let failed = 0;
  for (const policy of policies) {
    const lines = await getVSCodeTokens(
      registry, 'source.rk', fs.readFileSync(path.join(root, policy), 'utf8'));
    const snap = path.join(snapshots, path.basename(policy) + '.snap');
    const rendered = renderSnap(lines);
    // A shipped policy checks without errors, so nothing in it may look like one.
    const invalid = lines.flatMap((line, n) => line.tokens
      .filter((t) => t.scopes.some((s) => s.startsWith('invalid.')))
      .map((t) => `${policy}:${n + 1}:${t.startIndex + 1}: ${line.src.slice(t.startIndex, t.endIndex)}`
        + ` is scoped ${t.scopes.join(' ')}`));
    if (invalid.length) {
      failed += 1;
      console.error(invalid.join('\n'));
    }
    if (update || !fs.existsSync(snap)) {
      fs.mkdirSync(snapshots, { recursive: true });
      fs.writeFileSync(snap, rendered, 'utf8');
      console.log(`wrote ${path.relative(process.cwd(), snap)}`);
      continue;
    }
    const expected = fs.readFileSync(snap, 'utf8').split('\n');
    const actual = rendered.split('\n');
    const at = expected.findIndex((line, i) => line !== actual[i]);
    if (at >= 0 || expected.length !== actual.length) {
      failed += 1;
      const i = at >= 0 ? at : Math.min(expected.length, actual.length);
      console.error(`${policy}: the tokens differ from ${path.relative(process.cwd(), snap)}`
        + ` at its line ${i + 1}:\n  expected: ${expected[i]}\n  actual:   ${actual[i]}\n`
        + 'If the change is intended, run `./dev editors --update` and commit the snapshots.');
    } else {
      console.log(`ok ${policy}: ${lines.length} lines as in the snapshot`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
