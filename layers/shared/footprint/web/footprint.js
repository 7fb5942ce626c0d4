/* footprint.js: see the README's "Put Footprint on your site" */
((w, d) => {
  "use strict";
  const stub = w.footprint;
  if (stub && stub.version) return;
  const nav = navigator, P = "footprint_", now = () => new Date().toISOString(), uuid = () => crypto.randomUUID();
  let api = d.currentScript ? new URL(d.currentScript.src).origin : location.origin;
  let key, opts = {}, cfg = {}, queue = [], timer, busy, fails = 0, retryAt = 0, shown, ticker, product, anon, loaded;
  const ready = new Promise((resolve) => (loaded = resolve)), seen = new Set(), carted = new Set();

  const get = (name) => {
    try { return JSON.parse(localStorage[P + name]); } catch {}
  };
  const put = (name, value) => {
    try { value == null ? localStorage.removeItem(P + name) : (localStorage[P + name] = JSON.stringify(value)); } catch {}
  };
  const cookie = (value) => value === undefined ? (d.cookie.match(/(^|; )footprint_aid=([^;]*)/) || [])[2] :
    (d.cookie = `${P}aid=${value || ""}; path=/; max-age=${value ? 31536000 : 0}; SameSite=Lax` +
      (isSecureContext ? "; Secure" : ""));
  const tracked = () => !(opts.respectDoNotTrack && (nav.doNotTrack == "1" || nav.globalPrivacyControl)) &&
    get("consent") !== false;
  const allowed = () => tracked() && (!opts.requireConsent || get("consent"));
  const anonymousId = () => {
    anon = anon || cookie() || get("aid") || uuid();
    if (allowed()) cookie(anon), put("aid", anon);
    return anon;
  };
  const user = () => get("user") || {};
  const who = () => ({ writeKey: key, anonymousId: anonymousId(), userId: user().id, user_hash: user().hash });

  const pageInfo = () => ({ path: location.pathname, referrer: d.referrer, search: location.search, title: d.title,
    url: location.href });
  const campaign = () => {
    const found = {};
    for (const [name, value] of new URLSearchParams(location.search))
      if (name.startsWith("utm_")) found[name == "utm_campaign" ? "name" : name.slice(4)] = value;
    return Object.keys(found).length ? found : undefined;
  };
  const session = () => {
    const last = get("session"), at = Date.now();
    const id = !last || at - last.at > (cfg.session_timeout_minutes || 30) * 6e4 ? uuid() : last.id;
    put("session", { id, at });
    if (id != (last && last.id)) track("session_started", { session_id: id, returning: !!last });
    return id;
  };
  const send = (type, fields, urgent) => {
    if (!tracked()) return;
    const context = { page: pageInfo(), campaign: campaign(), userAgent: nav.userAgent, locale: nav.language,
      timezone: Intl.DateTimeFormat().resolvedOptions().timeZone, library: { name: "footprint.js", version: "1" },
      user_hash: user().hash };
    if (fields.event != "session_started") context.session_id = session();
    queue.push({ type, ...fields, anonymousId: anonymousId(), userId: user().id, messageId: uuid(), timestamp: now(), context });
    schedule(urgent ? 0 : opts.flushInterval ?? 500);
  };
  const track = (event, properties, urgent) => send("track", { event, properties }, urgent);
  const schedule = (ms) => {
    if (timer && ms) return;
    clearTimeout(timer);
    timer = setTimeout(flush, Math.max(ms, retryAt - Date.now()));
  };
  const post = (path, body) => fetch(api + path, { method: "POST", body: JSON.stringify(body), keepalive: true,
    headers: { "content-type": "text/plain" } });
  // 20 calls of about 1 KB: under the 64 KB keepalive and sendBeacon allow.
  const take = () => ({ writeKey: key, batch: queue.splice(0, 20), sentAt: now() });
  const flush = async (leaving) => {
    timer = 0;
    if (!key || !queue.length || !allowed() || (busy && !leaving)) return;
    const body = take();
    if (leaving === true && nav.sendBeacon(api + "/v1/batch", new Blob([JSON.stringify(body)], { type: "text/plain" })))
      return flush(true);
    busy = true;
    try {
      const response = await post("/v1/batch", body);
      if (response.status == 429 || response.status >= 500) throw response;
      fails = 0;
      pollSoon();
    } catch (error) {
      // Same messageIds: the API drops what it already has.
      queue.unshift(...body.batch);
      const after = error.headers && error.headers.get("retry-after");
      retryAt = Date.now() + Math.max(after * 1e3 || 0,
        Math.min(6e4, 500 * 2 ** ++fails * (0.5 + Math.random() / 2)));
    }
    busy = false;
    if (queue.length) schedule(1);
  };

  // Reading time counts visible seconds; product_viewed at each threshold a journey uses.
  const thresholds = () => (cfg.dwell_thresholds || []).length ? cfg.dwell_thresholds : [15];
  const watch = (item) => {
    let dwell = 0;
    product = { url: location.href.split("#")[0], ...item };
    clearInterval(ticker);
    ticker = setInterval(() => {
      if (d.hidden) return;
      dwell++;
      if (thresholds().some((seconds) => Math.ceil(seconds) == dwell)) track("product_viewed",
        { ...product, dwell_seconds: dwell, added_to_cart: carted.has(product.product_id) }, 1);
      if (dwell >= Math.max(...thresholds())) clearInterval(ticker);
    }, 1e3);
  };
  const fromPage = (element) => {
    const { footprintProduct: product_id, price, ...rest } = element ? element.dataset : {};
    return { product_id, ...rest, ...(price && { price: +price }) };
  };

  // This browser's own onsite inbox: one message on screen at a time, each shown once.
  const ack = (message, action, fields, tries = 3) =>
    post("/v1/onsite/ack", { ...who(), message_id: message.message_id, action, fields })
      .then((response) => { if (response.status == 429 || response.status >= 500) throw 0; pollSoon(); })
      .catch(() => --tries && setTimeout(ack, 2e3, message, action, fields, tries));
  const poll = async () => {
    if (!key || shown || !allowed() || d.hidden) return;
    try {
      const response = await post("/v1/onsite", who());
      const next = (response.ok ? (await response.json()).messages : []).find((message) => !seen.has(message.message_id));
      if (next && !shown) render(next);
    } catch {}
  };
  const pollSoon = () => [400, 1e3, 2e3, 4e3].map((ms) => setTimeout(poll, ms));
  // The renderer (footprint-ui.js) loads the first time a message is due; it hands over its `show`.
  let ui;
  const render = (message) => {
    seen.add(message.message_id);
    shown = message;
    ui = ui || new Promise((resolve, reject) => {
      footprint.ui = resolve;
      const script = d.createElement("script");
      script.onerror = reject;
      if (opts.nonce) script.nonce = opts.nonce;
      script.src = api + "/footprint-ui.js";
      d.head.append(script);
    });
    ui.then((show) => show(message, opts, (action, fields) => {
      if (action != "shown") shown = 0;
      // In the click itself: browsers ask for permission only on a user gesture.
      if (action == "clicked" && message.content.url == "#web-push") push.subscribe().catch(() => {});
      ack(message, action, fields);
    }), () => {
      ui = shown = 0;
      seen.delete(message.message_id);
    });
  };

  // Call push.subscribe() from a click: browsers ask permission only on a user gesture.
  const push = {
    supported: "PushManager" in w && "serviceWorker" in nav,
    async subscribe() {
      if (!push.supported || (await Notification.requestPermission()) != "granted") return null;
      await ready;
      if (!cfg.web_push || !cfg.vapid_public_key) throw Error("web push is off for this site");
      await nav.serviceWorker.register((opts.serviceWorker || "/footprint-sw.js") + "?" +
        new URLSearchParams({ api, writeKey: key, anonymousId: anonymousId() }));
      const registration = await nav.serviceWorker.ready, subscription = await registration.pushManager.getSubscription() ||
        await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: cfg.vapid_public_key });
      track("web_push_subscribed", { subscription: subscription.toJSON() }, 1);
      return subscription;
    },
    async unsubscribe() {
      const registration = push.supported && await nav.serviceWorker.getRegistration();
      const subscription = registration && await registration.pushManager.getSubscription();
      if (!subscription) return false;
      track("web_push_unsubscribed", { endpoint: subscription.endpoint }, 1);
      return subscription.unsubscribe();
    },
  };

  const footprint = {
    version: "1",
    push,
    anonymousId,
    ready: (callback) => ready.then(callback),
    async load(writeKey, options = {}) {
      if (key) return;
      key = writeKey;
      opts = options;
      api = (options.apiHost || api).replace(/\/$/, "");
      try {
        const response = await fetch(`${api}/v1/projects/${encodeURIComponent(key)}/settings`);
        if (response.ok) cfg = await response.json();
      } catch {}
      loaded(footprint);
      const item = d.querySelector("[data-footprint-product]");
      if (item && !product) watch(fromPage(item));
      setInterval(poll, (cfg.onsite_poll_seconds || 15) * 1e3);
      poll();
      flush();
    },
    page(name, properties) {
      if (typeof name == "object") [name, properties] = [0, name];
      send("page", { name: name || d.title, properties: { ...pageInfo(), ...properties } });
    },
    track,
    identify(userId, traits, options) {
      if (typeof userId == "object") [userId, traits, options] = [0, userId, traits];
      if (userId) put("user", { id: "" + userId, hash: options && options.user_hash });
      send("identify", { traits }, 1);
    },
    reset() {
      ["user", "aid", "session"].map((name) => put(name, null));
      cookie(anon = null);
    },
    consent(granted) {
      put("consent", !!granted);
      if (granted) return flush();
      queue = [];
      footprint.reset();
    },
    productViewed: watch,
    addToCart(item) {
      const added = { ...product, ...item };
      carted.add(added.product_id);
      track("add_to_cart", added, 1);
    },
    purchase: (order) => track("purchase", order, 1),
  };
  d.addEventListener("click", (event) => {
    const target = event.target.closest("[data-footprint-add-to-cart],[data-footprint-push]");
    if (target && target.dataset.footprintPush != null) push.subscribe().catch(() => {});
    else if (target) footprint.addToCart(fromPage(target.closest("[data-footprint-product]") || d.querySelector("[data-footprint-product]")));
  });
  w.addEventListener("pagehide", () => flush(true));
  d.addEventListener("visibilitychange", () => (d.hidden ? flush(true) : poll()));
  w.footprint = footprint;
  // Calls the snippet's stub kept before the script arrived.
  for (const [method, ...args] of Array.isArray(stub) ? stub : []) footprint[method](...args);
})(window, document);
