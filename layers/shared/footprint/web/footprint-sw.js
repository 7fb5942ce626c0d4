/* footprint-sw.js: the service worker of Footprint's web push. A site serves it from its own origin,
   usually as a one-line /footprint-sw.js: importScripts("https://<tracking host>/footprint-sw.js").
   footprint.js registers it as footprint-sw.js?api=<tracking host>&writeKey=<write key>&anonymousId=<id>:
   where to report clicks, with which key; a push names its own visitor (anonymous_id) and message ids.
   Payload: {title, body, url, icon, image, badge, tag, require_interaction, actions: [{action, title, url}],
   message_id, journey_id, node_id, enrollment_id, channel, anonymous_id}. */
"use strict";
const registered = new URL(self.location).searchParams;

const reportClick = (payload) => {
  const api = registered.get("api") || "";
  const messageId = payload.message_id;
  if (!api || !messageId) return Promise.resolve();
  const properties = { channel: payload.channel || "web_push" };
  for (const name of ["message_id", "journey_id", "node_id", "enrollment_id"]) properties[name] = payload[name] || "";
  return fetch(api + "/v1/batch", {
    method: "POST",
    headers: { "content-type": "text/plain" },
    // sentAt lets the API correct this device's clock, as for the page's calls.
    body: JSON.stringify({
      writeKey: registered.get("writeKey"),
      sentAt: new Date().toISOString(),
      batch: [{
        type: "track",
        event: "message_clicked",
        anonymousId: payload.anonymous_id || registered.get("anonymousId"),
        // One click is one event however often it is reported: the API de-duplicates by messageId.
        messageId: `${messageId}:clicked`,
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
  const optional = (value) => value || undefined;
  event.waitUntil(self.registration.showNotification(payload.title || "", {
    body: payload.body || "",
    icon: optional(payload.icon),
    image: optional(payload.image),
    badge: optional(payload.badge),
    tag: optional(payload.tag),
    requireInteraction: !!payload.require_interaction,
    actions: (payload.actions || []).map(({ action, title }) => ({ action, title })),
    data: payload,
  }));
});

self.addEventListener("notificationclick", (event) => {
  const payload = event.notification.data || {};
  event.notification.close();
  // A button of the notification opens its own url; the notification itself opens the message's.
  const button = (payload.actions || []).find((action) => action.action == event.action);
  const url = new URL((button && button.url) || payload.url || "/", self.location.origin).href;
  const focus = self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
    const open = windows.find((client) => client.url == url);
    return open ? open.focus() : self.clients.openWindow(url);
  }).catch(() => {});
  event.waitUntil(Promise.all([reportClick(payload), focus]));
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
      body: JSON.stringify({ writeKey: registered.get("writeKey"), sentAt: new Date().toISOString(), batch }),
    });
  }).catch(() => {});
  event.waitUntil(renew);
});
