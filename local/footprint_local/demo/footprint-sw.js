// The shop's service worker, on its own origin as browsers require: one line that loads Footprint's.
// (A client site writes its tracking host: importScripts("https://track.example.com/footprint-sw.js").)
importScripts("/footprint-sw.js");
