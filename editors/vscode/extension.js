// Starts `wf lsp` for .wf files (the binary from the `wf.path` setting, default `wf` on PATH).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const command = vscode.workspace.getConfiguration("wf").get("path") || "wf";
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "wf",
    "wf language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "wf" }] }
  );
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
