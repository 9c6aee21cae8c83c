// graphql-http's server audits against a live /graphql, one JSON line per audit:
// {"id", "name", "status", "reason"}. Usage: node graphql_http_audit.mjs <node_modules> <url> <key>
// The caller's API key goes on every request through the audits' own fetchFn hook.
import { createRequire } from "node:module";
import path from "node:path";

const [nodeModules, url, apiKey] = process.argv.slice(2);
const require = createRequire(path.join(nodeModules, "graphql-http", "package.json"));
const { serverAudits } = require("graphql-http");

const fetchFn = (input, init = {}) =>
  fetch(input, { ...init, headers: { ...init.headers, "x-api-key": apiKey } });

for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  const reason = result.status === "ok" ? "" : result.reason;
  console.log(JSON.stringify({ id: result.id, name: result.name, status: result.status, reason }));
}
