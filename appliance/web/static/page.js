// The page's only script (served from here; the CSP allows nothing inline).
// 1. Times: the server writes each as <time datetime="…Z">, to the minute in UTC; here it becomes the
//    viewer's local time and how long ago ("14:03, 5 min ago"), the exact UTC time on hover.
// 2. Refresh: every N seconds (data-refresh on <main>; 0 = never) fetch the same URL and swap <main>
//    in place, keeping the scroll position. No reload, no flicker.
(function () {
  "use strict";
  var MINUTE = 60e3, HOUR = 3600e3, DAY = 86400e3;

  function clock(date) {
    return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function day(date, now) {
    var options = { day: "numeric", month: "short" };
    if (date.getFullYear() !== now.getFullYear()) options.year = "numeric";
    return date.toLocaleDateString([], options);
  }

  function ago(ms) {
    var past = ms >= 0, span = Math.abs(ms), text;
    if (span < MINUTE) return past ? "just now" : "in under a minute";
    if (span < HOUR) text = Math.floor(span / MINUTE) + " min";
    else if (span < DAY) text = Math.floor(span / HOUR) + " h";
    else text = Math.floor(span / DAY) + " d";
    return past ? text + " ago" : "in " + text;
  }

  function localTime(date, now) {
    var ms = now - date;
    if (Math.abs(ms) < HOUR) return ago(ms);
    var sameDay = date.toDateString() === now.toDateString();
    if (Math.abs(ms) < 7 * DAY) return (sameDay ? "" : day(date, now) + " ") + clock(date) + " (" + ago(ms) + ")";
    return day(date, now) + " " + clock(date);
  }

  function localize(root) {
    var now = new Date();
    var times = root.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var date = new Date(times[i].getAttribute("datetime"));
      if (isNaN(date.getTime())) continue;
      times[i].textContent = times[i].getAttribute("data-style") === "clock"
        ? day(date, now) + " " + clock(date) : localTime(date, now);
      times[i].title = date.toISOString().replace("T", " ").replace("Z", " UTC");
    }
  }

  localize(document);

  var main = document.getElementById("content");
  var seconds = main ? parseInt(main.getAttribute("data-refresh"), 10) : 0;
  if (!seconds) return;
  function refresh() {
    if (document.hidden) return;
    fetch(window.location.href, { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var fresh = new DOMParser().parseFromString(html, "text/html").getElementById("content");
        var current = document.getElementById("content");
        // Not while the reader types in a form (a filter): the swap would lose it.
        var active = document.activeElement;
        var focused = active && current.contains(active) && /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
        if (fresh && current && !focused) {
          localize(fresh);
          // What the reader opened stays open.
          var opened = current.querySelectorAll("details[open][id]");
          for (var i = 0; i < opened.length; i++) {
            var same = fresh.querySelector("details#" + CSS.escape(opened[i].id));
            if (same) same.open = true;
          }
          current.replaceWith(fresh);
        }
      })
      .catch(function () { /* the appliance may be restarting; try again next time */ });
  }
  setInterval(refresh, seconds * 1000);
})();
