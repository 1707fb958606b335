// Live updates for alcance pages (progressive enhancement: without this script a page is complete,
// it just does not refresh itself). The server sends only "indicator X changed" notices; the script
// then re-reads the page through the server, which applies the viewer's role, and swaps the sections
// that show X. Nothing else changes: focus, scroll position and filters stay where they were.
(function () {
  "use strict";
  if (!("EventSource" in window) || !("fetch" in window)) return;
  var streamUrl = document.body.getAttribute("data-stream");
  if (!streamUrl) return;
  var pending = new Set();
  var all = false;
  var timer = null;

  function sections() {
    return Array.prototype.slice.call(document.querySelectorAll("section[data-live]"));
  }

  function schedule(indicator) {
    if (indicator === null) {
      all = true;
    } else {
      pending.add(indicator);
    }
    if (timer === null) timer = window.setTimeout(refresh, 150);
  }

  function wanted(section) {
    if (all) return true;
    var ids = (section.getAttribute("data-indicators") || "").split(" ");
    return ids.some(function (id) { return id === "*" ? pending.size > 0 : pending.has(id); });
  }

  function refresh() {
    timer = null;
    var targets = sections().filter(wanted);
    pending.clear();
    all = false;
    if (targets.length === 0) return;
    fetch(window.location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.text();
      })
      .then(function (html) {
        var fresh = new DOMParser().parseFromString(html, "text/html");
        targets.forEach(function (section) {
          var replacement = fresh.getElementById(section.id);
          if (!replacement) return;
          var focused = document.activeElement;
          var focusId = focused && section.contains(focused) ? focused.id : "";
          section.innerHTML = replacement.innerHTML;
          if (focusId && document.getElementById(focusId)) document.getElementById(focusId).focus();
        });
        // The stamp says how current the values are: their instant, and whether newer data waits.
        var stamp = document.querySelector("p.updated");
        var freshStamp = fresh.querySelector("p.updated");
        if (stamp && freshStamp) stamp.innerHTML = freshStamp.innerHTML;
        var count = Number(document.body.getAttribute("data-refreshes") || "0") + 1;
        document.body.setAttribute("data-refreshes", String(count));
      })
      .catch(function () {
        // A failed refresh leaves the page as it was; the next notice tries again.
      });
  }

  var source = new EventSource(streamUrl, { withCredentials: true });
  source.addEventListener("indicator", function (event) {
    try {
      schedule(JSON.parse(event.data).indicator);
    } catch (error) {
      schedule(null);
    }
  });
  // Leaving the page ends the stream at once instead of when the server next writes to it.
  window.addEventListener("pagehide", function () { source.close(); });
  source.addEventListener("resync", function () { schedule(null); });
  source.addEventListener("open", function () { document.body.setAttribute("data-stream-open", "true"); });
})();
