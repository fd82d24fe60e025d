/// <reference types="vitest/config" />
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// The built app is served by `mechscope serve` from the Python package (src/mechscope/server/static).
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "../src/mechscope/server/static",
    emptyOutDir: true,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: {
    environment: "jsdom",
    globals: true,
    setupFiles: ["./src/test/setup.ts"],
    include: ["src/**/*.test.{ts,tsx}"],
    // Tests that render the whole app and click through it take ~3 s alone and over 5 s (vitest's
    // default limit) on a loaded 2-core CI runner; a hung test still fails, after 30 s.
    testTimeout: 30_000,
  },
});
