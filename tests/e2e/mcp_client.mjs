// An MCP client that no one on the team wrote: the official TypeScript SDK's Client over stdio.
//
// Usage: node mcp_client.mjs '<config json>'; run by tests/e2e/test_outside_client.py, which asserts
// on the one JSON object this prints on stdout. Config keys:
//   sdk        the @modelcontextprotocol/sdk package directory (tools/install_mcp_sdk.py)
//   command, args, env, cwd   how to start the server (env is added to this process's environment)
//   spawn      the arguments of the `spawn` call
//   wait_timeout_s            the `timeout_s` of the `wait` call
//   task       the `task` argument of the orchestrate prompt
//
// It lists the tools and prompts, fetches the orchestrate prompt with a task of several words, calls
// spawn, then wait with an `onprogress` handler (so the request carries a progressToken and the
// server's progress notifications are collected), then result, and closes.
// The SDK validates every structuredContent against the tool's outputSchema from tools/list.

import { join } from "node:path";
import { pathToFileURL } from "node:url";

const config = JSON.parse(process.argv[2]);
// ESM resolves bare names from this file's folder, not from the SDK's install prefix: import by path.
const load = (relative) => import(pathToFileURL(join(config.sdk, "dist", "esm", relative)).href);
const { Client } = await load("client/index.js");
const { StdioClientTransport } = await load("client/stdio.js");

const summary = { steps: [] };
const transport = new StdioClientTransport({
  command: config.command,
  args: config.args,
  // Without `env` the SDK passes only a handful of safe variables; the children need the mock's.
  env: { ...process.env, ...config.env },
  cwd: config.cwd,
  stderr: "inherit",
});
const client = new Client({ name: "overmind-e2e-outside-client", version: "1.0.0" });

async function call(name, args, options) {
  const answer = await client.callTool({ name, arguments: args }, undefined, options);
  summary.steps.push(name);
  if (answer.isError) {
    throw new Error(`${name} failed: ${JSON.stringify(answer.content)}`);
  }
  return answer.structuredContent;
}

try {
  await client.connect(transport);
  summary.server = client.getServerVersion();
  summary.protocol_instructions = Boolean(client.getInstructions());

  const { tools } = await client.listTools();
  summary.tools = tools.map((tool) => tool.name);
  summary.tools_without_output_schema = tools.filter((tool) => !tool.outputSchema).map((tool) => tool.name);
  summary.steps.push("tools/list");

  const { prompts } = await client.listPrompts();
  summary.prompts = prompts.map((prompt) => ({ name: prompt.name, arguments: prompt.arguments?.map((a) => a.name) }));
  const orchestrate = await client.getPrompt({ name: "orchestrate", arguments: { task: config.task } });
  summary.orchestrate_text = orchestrate.messages.map((message) => message.content.text).join("\n");
  summary.steps.push("prompts/get");

  summary.spawned = await call("spawn", config.spawn);

  summary.progress = [];
  summary.waited = await call(
    "wait",
    { ids: [summary.spawned.id], timeout_s: config.wait_timeout_s },
    {
      onprogress: ({ progress, total, message }) => summary.progress.push({ progress, total, message }),
      timeout: (config.wait_timeout_s + 30) * 1000,
    },
  );

  summary.result = await call("result", { id: summary.spawned.name });
} catch (error) {
  summary.error = String(error?.stack ?? error);
} finally {
  await client.close();
  summary.closed = true;
}
process.stdout.write(JSON.stringify(summary) + "\n");
process.exit(summary.error ? 1 : 0);
