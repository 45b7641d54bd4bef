// Copy the browser builds of the UI's npm dependencies into the package's static files.
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const vendor = join(root, "src", "reelscale", "web", "static", "vendor");
mkdirSync(vendor, { recursive: true });
for (const [from, to] of [
  ["node_modules/hls.js/dist/hls.min.js", "hls.min.js"],
  ["node_modules/hls.js/LICENSE", "hls.js.LICENSE.txt"],
]) {
  copyFileSync(join(root, from), join(vendor, to));
}
console.log(`vendored hls.js into ${vendor}`);
