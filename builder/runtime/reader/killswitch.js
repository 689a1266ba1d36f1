// Served at /sw.js of a gallery that was taken down: it replaces the gallery's Service Worker,
// deletes everything the gallery stored in this browser, unregisters itself and reloads open
// pages, which then get the server's "taken down" answer.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) await caches.delete(key);
      await self.registration.unregister();
      for (const client of await self.clients.matchAll({ type: "window" })) client.navigate(client.url);
    })(),
  );
});
