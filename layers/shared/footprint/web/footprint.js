/* footprint.js: the browser script (see docs/architecture.md, "The visitor's side"). */
