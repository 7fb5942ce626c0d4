/* footprint-sw.js: the service worker of Footprint's web push. A site serves it from its own origin,
   usually as a one-line /footprint-sw.js: importScripts("https://<tracking host>/footprint-sw.js").
   footprint.js registers it with ?api=&writeKey=&anonymousId=, the fallback when a push carries none. */
"use strict";
const registered = new URL(self.location).searchParams;

// The push payload's own fields first (the send function puts ids and the visitor in `data`).
const field = (payload, name) => (payload.data && payload.data[name]) || payload[name] || registered.get(name) || "";

const report = (payload, event) => {
  const api = field(payload, "api").replace(/\/$/, "");
  const messageId = field(payload, "message_id");
  if (!api || !messageId) return Promise.resolve();
  const properties = { channel: "web_push" };
  for (const name of ["message_id", "journey_id", "node_id", "enrollment_id"]) properties[name] = field(payload, name);
  return fetch(api + "/v1/batch", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    body: JSON.stringify({
      writeKey: field(payload, "writeKey"),
      batch: [{
        type: "track",
        event,
        anonymousId: field(payload, "anonymousId"),
        // One click is one event however often the browser retries: the API de-duplicates by messageId.
        messageId: `${messageId}:${event == "message_clicked" ? "clicked" : event}`,
        timestamp: new Date().toISOString(),
        properties,
        context: { library: { name: "footprint-sw.js", version: "1" } },
      }],
    }),
  }).catch(() => {});
};

self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let payload = {};
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { body: event.data.text() };
  }
  const notification = payload.notification || payload; // Declarative Web Push's shape, or Footprint's flat one
  event.waitUntil(self.registration.showNotification(notification.title || "", {
    body: notification.body || "",
    icon: notification.icon || undefined,
    image: notification.image || undefined,
    badge: notification.badge || undefined,
    tag: notification.tag || undefined,
    data: { ...payload, url: notification.url || notification.navigate || payload.url || "/" },
  }));
});

self.addEventListener("notificationclick", (event) => {
  const payload = event.notification.data || {};
  event.notification.close();
  const url = new URL(payload.url || "/", self.location.origin).href;
  const focus = self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    const open = windows.find((client) => client.url == url);
    return open ? open.focus() : self.clients.openWindow(url);
  }).catch(() => {});
  event.waitUntil(Promise.all([report(payload, "message_clicked"), focus]));
});

// The browser replaced the subscription (keys rotated, expired): subscribe again and tell the API.
self.addEventListener("pushsubscriptionchange", (event) => {
  const old = event.oldSubscription;
  const options = (old && old.options) || { userVisibleOnly: true };
  const renew = (event.newSubscription ? Promise.resolve(event.newSubscription)
    : self.registration.pushManager.subscribe(options)).then((subscription) => {
    const api = registered.get("api");
    if (!api) return;
    const message = (name, properties) => ({
      type: "track",
      event: name,
      anonymousId: registered.get("anonymousId"),
      messageId: crypto.randomUUID(),
      timestamp: new Date().toISOString(),
      properties,
    });
    const batch = [message("web_push_subscribed", { subscription: subscription.toJSON() })];
    if (old) batch.unshift(message("web_push_unsubscribed", { endpoint: old.endpoint }));
    return fetch(api + "/v1/batch", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: JSON.stringify({ writeKey: registered.get("writeKey"), batch }),
    });
  }).catch(() => {});
  event.waitUntil(renew);
});
