// The build writes into the Python package (src/rulekit/studio/static/), where the wheel
// ships it: index.html plus assets/ with content-hashed names. RULEKIT_STUDIO_OUT points
// it elsewhere (./dev studio --check builds into a temp dir and compares).
import { defineConfig } from "vitest/config";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

export default defineConfig({
  base: "/",
  build: {
    outDir: process.env.RULEKIT_STUDIO_OUT ?? resolve(here, "../src/rulekit/studio/static"),
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 4096,
  },
  test: {
    environment: "jsdom",
    include: ["test/**/*.test.ts"],
  },
});
