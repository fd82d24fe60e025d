// Fails when src/client/schema.ts is not what openapi-typescript generates from openapi.json,
// so that the typed client cannot drift from the API (CI runs `npm run check:client`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const checkedIn = join(web, "src/client/schema.ts");
const dir = mkdtempSync(join(tmpdir(), "mechscope-client-"));
const fresh = join(dir, "schema.ts");
try {
  execFileSync(
    process.execPath,
    [join(web, "node_modules/openapi-typescript/bin/cli.js"), join(web, "openapi.json"),
     "--default-non-nullable", "false", "-o", fresh],
    { cwd: web, stdio: ["ignore", "ignore", "inherit"] },
  );
  const norm = (s) => s.replace(/\r\n/g, "\n");
  if (norm(readFileSync(fresh, "utf8")) !== norm(readFileSync(checkedIn, "utf8"))) {
    console.error(
      "check:client FAILED: web/src/client/schema.ts is out of date with web/openapi.json.\n" +
        "Regenerate it with `npm run gen:client` (in web/) and commit the result.",
    );
    process.exit(1);
  }
  console.log("check:client ok: src/client/schema.ts matches openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
