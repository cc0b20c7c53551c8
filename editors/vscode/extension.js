// The rulekit extension's client: starts `rulekit lsp` (the language server in the rulekit
// package) over stdio and connects it to .rk files, and to the YAML files the user lists.
// Highlighting needs none of this: the grammars in syntaxes/ work without a server.
'use strict';

const path = require('path');
const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/**
 * The command that runs the server, from the settings. A relative path with a separator in
 * it (`.venv/bin/rulekit`, as `./dev` makes it) is taken from the first workspace folder, so
 * a checkout's own rulekit serves its policies; a bare name is looked up on PATH.
 */
function serverCommand(config) {
  const configured = config.get('server.path') || 'rulekit';
  const folders = vscode.workspace.workspaceFolders;
  if (path.isAbsolute(configured) || !/[\\/]/.test(configured) || !folders || !folders.length) {
    return configured;
  }
  return path.join(folders[0].uri.fsPath, configured);
}

function createClient() {
  const config = vscode.workspace.getConfiguration('rulekit');
  const run = {
    command: serverCommand(config),
    args: config.get('server.args') || ['lsp'],
    transport: TransportKind.stdio,
  };
  const documentSelector = [
    { scheme: 'file', language: 'rulekit' },
    { scheme: 'untitled', language: 'rulekit' },
    ...(config.get('server.yamlFiles') || []).map((pattern) => ({
      scheme: 'file', language: 'yaml', pattern,
    })),
  ];
  return new LanguageClient(
    'rulekit',
    'rulekit',
    { run, debug: run },
    { documentSelector },
  );
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
    const command = serverCommand(vscode.workspace.getConfiguration('rulekit'));
    vscode.window.showErrorMessage(
      `rulekit: the language server (${command} lsp) did not start: ${error.message || error}. ` +
        "Install it with pip install 'rulekit[lsp]', or set rulekit.server.path.",
    );
  }
}

async function stop() {
  if (client) {
    const running = client;
    client = undefined;
    await running.stop().catch(() => undefined);
  }
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('rulekit.restartServer', async () => {
      await stop();
      await start();
    }),
    // A new server path, arguments or YAML patterns take effect at once.
    vscode.workspace.onDidChangeConfiguration(async (event) => {
      if (event.affectsConfiguration('rulekit.server')) {
        await stop();
        await start();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate };
