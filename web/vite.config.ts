import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

/**
 * The portal builds into dist/web, which `atrium serve` serves at `/`.
 * Nothing is inlined (the server's CSP allows scripts and styles from the
 * portal's own origin only). `npx vite web` serves it with hot reload and
 * forwards the API to a running `atrium serve` on 127.0.0.1:8080.
 */
export default defineConfig({
  root: import.meta.dirname,
  plugins: [react()],
  build: {
    outDir: '../dist/web',
    emptyOutDir: true,
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    chunkSizeWarningLimit: 700,
    rollupOptions: {
      // The portal imports the server's domain and API contract through their entries. Their modules only
      // declare (schemas, pure functions), so what the portal does not use is left out of the bundle.
      treeshake: { moduleSideEffects: (id) => !id.includes('/src/domain/') && !id.includes('/src/api/') },
    },
  },
  server: {
    proxy: { '/api': 'http://127.0.0.1:8080', '/w': 'http://127.0.0.1:8080' },
  },
});
