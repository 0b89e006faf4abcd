// The npm Piston client (piston-client 1.0.2) against a livexec server.
// Usage: CLIENTS_NODE_MODULES=.clients/npm/node_modules node piston_client.cjs BASE_URL CASE; prints one JSON line for the Rust test.
const path = require("node:path");
const { pathToFileURL } = require("node:url");

async function main() {
  // piston-client is an ES module: imported from the installed package's own file.
  const modules = process.env.CLIENTS_NODE_MODULES;
  const entry = path.join(modules, "piston-client", "index.js");
  const { default: piston } = await import(pathToFileURL(entry).href);

const [base, which] = process.argv.slice(2);
const client = piston({ server: base });
let result;
switch (which) {
  case "runtimes":
    result = await client.runtimes();
    break;
  case "hello":
    result = await client.execute("python", "print('hello from piston')");
    break;
  case "stdin_args":
    result = await client.execute(
      "python",
      "import sys\nprint(sys.stdin.read().strip(), ' '.join(sys.argv[1:]))",
      { stdin: "from stdin", args: ["a", "b"] },
    );
    break;
  case "compiled":
    result = await client.execute(
      "c++",
      "#include <iostream>\nint main(){std::cout<<6*7<<std::endl;}\n",
    );
    break;
  case "unknown":
    result = await client.execute("cobol", "DISPLAY 'HI'.", { version: "1.0.0" });
    break;
  default:
    throw new Error(`unknown case ${which}`);
}
console.log(JSON.stringify(result));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
