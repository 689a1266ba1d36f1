// Served at /sw.js of a gallery that was taken down: it replaces the gallery's Service Worker,
// deletes everything the gallery stored in this browser, unregisters itself and reloads open
// pages, which then get the server's "taken down" answer.
//
// A page whose navigation was still loading when this worker activated is no client yet
// (Clients.matchAll lists only pages ready to run scripts), and would keep what the old worker
// answered: the clients are looked for again every SWEEP_MS, SWEEPS times, and each is reloaded once.
// A reloaded page is no longer controlled (the registration is gone), so it is never listed again.
const SWEEPS = 10;
const SWEEP_MS = 300;

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) await caches.delete(key);
      await self.registration.unregister();
      const reloaded = new Set();
      for (let sweep = 0; sweep < SWEEPS; sweep++) {
        for (const client of await self.clients.matchAll({ type: "window" })) {
          if (reloaded.has(client.id)) continue;
          reloaded.add(client.id);
          client.navigate(client.url).catch(() => {}); // a page closed meanwhile
        }
        await new Promise((resolve) => setTimeout(resolve, SWEEP_MS));
      }
    })(),
  );
});
