/**
 * The web UI's build: React + TypeScript bundled by Vite into dist/, served by the API at /ui/
 * (replay-ui/server/src/plugins/ui.ts). No dev server is needed to use it; `npx vite` in this folder
 * works for UI work against a running API (proxy below).
 */
import { defineConfig } from 'vite';
import { fileURLToPath } from 'node:url';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/ui/',
  // JSX with React's automatic runtime, without @vitejs/plugin-react (only needed for fast refresh).
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // One small app: the main chunk plus CSS, and the terminal player (xterm.js, ~340 KiB) as a
    // chunk of its own loaded only when an SSH session is opened; no source maps shipped.
    sourcemap: false,
    chunkSizeWarningLimit: 400,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:8480', '/oauth': 'http://127.0.0.1:8480', '/.well-known': 'http://127.0.0.1:8480' } },
});
