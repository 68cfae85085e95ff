// Vite build, dev-server and Vitest configuration for the Trellis web app.
import { defineConfig } from 'vitest/config';
import react from '@vitejs/plugin-react';
import tailwindcss from '@tailwindcss/vite';
import { fileURLToPath } from 'node:url';
import type { ProxyOptions } from 'vite';

const upstream = process.env.TRELLIS_URL ?? 'http://127.0.0.1:8080';

/** Forwards to the Trellis server, telling it the host the browser used (its Origin check). */
function toTrellis(ws = false): ProxyOptions {
  return {
    target: upstream,
    ws,
    configure: (proxy) => {
      proxy.on('proxyReq', (proxyReq, req) => {
        if (req.headers.host) proxyReq.setHeader('x-forwarded-host', req.headers.host);
      });
    },
  };
}

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No source maps in the committed bundle: smaller, and nothing path-dependent.
    sourcemap: false,
    target: 'es2022',
  },
  server: {
    // During `npm run dev`, forward API calls to a locally running Trellis server.
    // (`/api/ws` too: the proxy tunnels the WebSocket upgrade.)
    proxy: {
      '/auth': toTrellis(),
      '/api': toTrellis(true),
      '/metrics': toTrellis(),
    },
  },
  test: {
    environment: 'node',
    include: ['src/**/*.test.ts'],
  },
});
