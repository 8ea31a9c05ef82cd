/// <reference types="vitest/config" />
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// `npm run dev` proxies the API to `concertmaster dev` (default port 8080; override with
// CM_API=http://127.0.0.1:PORT npm run dev).
const api = process.env.CM_API ?? 'http://127.0.0.1:8080';

export default defineConfig({
  base: '/',
  plugins: [react()],
  server: {
    proxy: {
      '/v1': { target: api, changeOrigin: false },
      '/hooks': { target: api },
      '/ws': { target: api, ws: true },
      '/openapi.json': { target: api },
      '/healthz': { target: api },
    },
  },
  build: {
    outDir: 'dist',
    chunkSizeWarningLimit: 1500,
  },
  test: {
    include: ['test/**/*.test.ts'],
    environment: 'node',
  },
});
