// Live updates by polling one endpoint (/api/v1/live): no WebSockets, no broker. Every element with
// data-live="<key>" shows that key of the answer; the poll pauses while the tab is hidden.
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-live-url");
  var every = parseInt(body.getAttribute("data-poll-interval") || "15", 10) * 1000;
  if (!url || !document.querySelector("[data-live]")) { return; }
  var timer = null;

  function show(data) {
    document.querySelectorAll("[data-live]").forEach(function (el) {
      var key = el.getAttribute("data-live");
      if (Object.prototype.hasOwnProperty.call(data, key)) {
        var value = data[key];
        el.textContent = value === null ? "" : String(value);
        el.classList.toggle("zero", value === 0);
      }
    });
    document.querySelectorAll("[data-live-changed]").forEach(function (el) {
      var key = el.getAttribute("data-live-changed");
      var seen = el.getAttribute("data-live-seen");
      if (data[key] !== undefined && seen !== null && String(data[key]) !== seen) {
        el.hidden = false;
      }
    });
  }

  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) { show(data); } })
      .catch(function () { /* offline for a moment: the next poll tries again */ })
      .finally(function () { timer = window.setTimeout(poll, every); });
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden) { window.clearTimeout(timer); timer = null; }
    else if (timer === null) { poll(); }
  });
  poll();
})();
