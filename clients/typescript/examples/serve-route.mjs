// Serves the Next.js route handler example (examples/nextjs/...) with plain Node, for the tests:
// transpiles route.ts with TypeScript, swaps `next/cache` for a stub that records revalidateTag,
// and answers POST / with the handler and GET /tags with the tags revalidated so far.
// `PORT=... BACKROOM_WEBHOOK_SECRET=whsec_... node examples/serve-route.mjs`
import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = fileURLToPath(new URL(".", import.meta.url));
const source = readFileSync(`${here}nextjs/app/api/backroom-events/route.ts`, "utf8");
const js = ts.transpileModule(source, {
  compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
}).outputText;
const tags = [];
globalThis.__revalidated = tags;
writeFileSync(`${here}.next-cache-stub.mjs`, "export function revalidateTag(tag) { globalThis.__revalidated.push(tag); }\n");
writeFileSync(`${here}.route.mjs`, js.replace(/["']next\/cache["']/, '"./.next-cache-stub.mjs"'));
const { POST } = await import(`${here}.route.mjs`);

createServer(async (req, res) => {
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(tags));
    return;
  }
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  const request = new Request(`http://localhost${req.url}`, {
    method: "POST", headers: req.headers, body: Buffer.concat(chunks),
  });
  const response = await POST(request);
  res.writeHead(response.status).end(await response.text());
}).listen(Number(process.env.PORT), "127.0.0.1", () => console.log("listening"));
