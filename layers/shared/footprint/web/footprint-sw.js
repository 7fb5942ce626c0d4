/* footprint-sw.js: the service worker for web push (see docs/architecture.md). */
