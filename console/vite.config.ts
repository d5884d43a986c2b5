import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

// Served by the service at /console (app/console/routes.py). Output names carry only content
// hashes, so the committed dist/ changes exactly when the sources do (CI rebuilds and diffs it).
export default defineConfig({
  base: "/console/",
  plugins: [preact({ devtoolsInProd: false, prefreshEnabled: false })],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2022",
    modulePreload: { polyfill: false },
  },
  server: { proxy: { "/v1": "http://127.0.0.1:8000" } },
});
