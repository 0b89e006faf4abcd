// The official MCP TypeScript SDK (@modelcontextprotocol/sdk) as an agent would use it,
// over Streamable HTTP against a livexec server, or over stdio against `livexec mcp` (URL
// `stdio:/path/to/livexec`: the SDK starts the binary with this process's environment).
// Usage: CLIENTS_NODE_MODULES=.clients/npm/node_modules node mcp_client.cjs URL CASE;
// prints one JSON line for the Rust test.
const path = require("node:path");

const modules = process.env.CLIENTS_NODE_MODULES;
const sdk = (p) => require(path.join(modules, "@modelcontextprotocol/sdk/dist/cjs", p));
const { Client } = sdk("client/index.js");
const { StreamableHTTPClientTransport } = sdk("client/streamableHttp.js");
const { StdioClientTransport } = sdk("client/stdio.js");

function transport(url) {
  if (url.startsWith("stdio:")) {
    return new StdioClientTransport({
      command: url.slice("stdio:".length),
      args: ["mcp"],
      env: { ...process.env },
      stderr: "inherit",
    });
  }
  return new StreamableHTTPClientTransport(new URL(url));
}

async function main() {
  const [url, which] = process.argv.slice(2);
  const client = new Client({ name: "livexec-compat-test", version: "1.0.0" });
  await client.connect(transport(url));
  let result;
  try {
    switch (which) {
      case "tools":
        result = (await client.listTools()).tools.map((t) => t.name);
        break;
      case "runtimes":
        result = await client.callTool({ name: "list_runtimes", arguments: {} });
        break;
      case "run":
        result = await client.callTool({
          name: "run_code",
          arguments: { language: "python", code: "print('hello agent')" },
        });
        break;
      case "stdin":
        result = await client.callTool({
          name: "run_code",
          arguments: { language: "py", code: "print(input()[::-1])", stdin: "olleh" },
        });
        break;
      case "malformed":
        try {
          await client.callTool({ name: "run_code", arguments: { language: "cobol", code: "x" } });
          result = { error: null };
        } catch (e) {
          result = { error: e.code, message: e.message };
        }
        break;
      default:
        throw new Error(`unknown case ${which}`);
    }
  } finally {
    await client.close();
  }
  console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
