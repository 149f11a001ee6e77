// Refresh the page's content in place every N seconds (data-refresh on <main>; 0 = never):
// fetch the same URL, swap <main>, keep the scroll position. No reload, no flicker.
(function () {
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
        var focused = document.activeElement && current.contains(document.activeElement);
        if (fresh && current && !focused) current.replaceWith(fresh);
      })
      .catch(function () { /* the appliance may be restarting; try again next time */ });
  }
  setInterval(refresh, seconds * 1000);
})();
