// The client's contract with VS Code and the server, without VS Code: `vscode` and
// vscode-languageclient are replaced by recorders, and activate() is checked to start
// `rulekit lsp` over stdio for .rk files, with the settings as given, and to restart the
// server when they change. (The server's own behaviour is tested in the Python suite,
// through the protocol.)
'use strict';

const assert = require('assert');
const Module = require('module');
const path = require('path');

const defaults = Object.fromEntries(
  Object.entries(require('../package.json').contributes.configuration.properties)
    .map(([key, property]) => [key, property.default]));
const started = [];
const stopped = [];
let settings = {};
let onConfigurationChange;
const commands = {};
const errors = [];

const vscode = {
  workspace: {
    workspaceFolders: [{ uri: { fsPath: path.join(path.sep, 'work', 'policies') } }],
    // As VS Code does: the user's value, else the default package.json declares.
    getConfiguration: (section) => {
      assert.strictEqual(section, 'rulekit');
      return { get: (key) => (key in settings ? settings[key] : defaults[`rulekit.${key}`]) };
    },
    onDidChangeConfiguration: (listener) => {
      onConfigurationChange = listener;
      return { dispose() {} };
    },
  },
  window: { showErrorMessage: (message) => errors.push(message) },
  commands: {
    registerCommand: (name, handler) => {
      commands[name] = handler;
      return { dispose() {} };
    },
  },
};

class LanguageClient {
  constructor(id, name, serverOptions, clientOptions) {
    Object.assign(this, { id, name, serverOptions, clientOptions });
  }
  async start() {
    started.push(this);
    if (this.serverOptions.run.command.includes('missing')) {
      throw new Error('spawn ENOENT');
    }
  }
  async stop() {
    stopped.push(this);
  }
}
const languageclient = { LanguageClient, TransportKind: { stdio: 0 } };

const load = Module._load;
Module._load = function (request, ...rest) {
  if (request === 'vscode') return vscode;
  if (request === 'vscode-languageclient/node') return languageclient;
  return load.call(this, request, ...rest);
};
const extension = require('../extension.js');

async function main() {
  const context = { subscriptions: [] };

  // Defaults: `rulekit lsp` from PATH, for .rk files and YAML files (the server tells the
  // policies and scenario files among them by their keys, and leaves the rest alone).
  await extension.activate(context);
  let client = started.at(-1);
  assert.deepStrictEqual(client.serverOptions.run, { command: 'rulekit', args: ['lsp'], transport: 0 });
  assert.deepStrictEqual(client.clientOptions.documentSelector, [
    { scheme: 'file', language: 'rulekit' },
    { scheme: 'untitled', language: 'rulekit' },
    { scheme: 'file', language: 'yaml', pattern: '**/*.yaml' },
    { scheme: 'file', language: 'yaml', pattern: '**/*.yml' },
  ]);
  assert.ok(context.subscriptions.length >= 2, 'the command and the settings listener are disposed with the extension');

  // A checkout's own rulekit, relative to the workspace; YAML files the user names.
  settings = { 'server.path': '.venv/bin/rulekit', 'server.args': ['lsp', '--verbose'],
    'server.yamlFiles': ['**/rules/*.yaml'] };
  await onConfigurationChange({ affectsConfiguration: (s) => s === 'rulekit.server' });
  assert.strictEqual(stopped.at(-1), client, 'the old server is stopped');
  client = started.at(-1);
  assert.strictEqual(client.serverOptions.run.command, path.join(path.sep, 'work', 'policies', '.venv', 'bin', 'rulekit'));
  assert.deepStrictEqual(client.serverOptions.run.args, ['lsp', '--verbose']);
  assert.deepStrictEqual(client.clientOptions.documentSelector.slice(2),
    [{ scheme: 'file', language: 'yaml', pattern: '**/rules/*.yaml' }]);

  // An absolute path is used as it is; other settings do not restart the server.
  settings = { 'server.path': '/opt/rulekit/bin/rulekit' };
  const before = started.length;
  await onConfigurationChange({ affectsConfiguration: (s) => s === 'editor.fontSize' });
  assert.strictEqual(started.length, before);
  await commands['rulekit.restartServer']();
  assert.strictEqual(started.at(-1).serverOptions.run.command, '/opt/rulekit/bin/rulekit');

  // A server that cannot start is an error message naming the fix, not an exception.
  settings = { 'server.path': '/missing/rulekit' };
  await commands['rulekit.restartServer']();
  assert.match(errors.at(-1), /\/missing\/rulekit lsp.*pip install 'rulekit\[lsp\]'/);

  await extension.deactivate();
  assert.strictEqual(stopped.at(-1), started.at(-1));
  console.log(`ok client: ${started.length} starts, ${stopped.length} stops, as the settings said`);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
