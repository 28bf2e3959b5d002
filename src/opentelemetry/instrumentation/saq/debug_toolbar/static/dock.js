/* The SAQ panel in the docked toolbar: the table the toolbar's request page renders for
   it (server-side, escaped there) replaces the generic key/value table once it loads.
   While the panel is open and a job is unfinished, it asks the status endpoint once a
   second and reloads the table when the jobs' version differs (polling, as the panel's
   spec asks); it says how fresh the table is and stops once every job is final, the
   watch window is over, or the panel is closed or shows another request. Due times
   count down every second while the table is shown, from the server's clock. */
(function () {
  "use strict";
  if (typeof DebugToolbar !== "function") return;
  var proto = DebugToolbar.prototype;
  var generic = proto.renderPanelById;
  if (typeof generic !== "function" || proto.saqPanelHooked) return;
  proto.saqPanelHooked = true;

  function ago(seconds) { // templating.duration's words
    var whole = Math.max(0, Math.round(seconds));
    if (whole < 60) return whole + " s";
    if (whole < 3600) return Math.floor(whole / 60) + " min " + (whole % 60) + " s";
    return Math.floor(whole / 3600) + " h " + Math.floor((whole % 3600) / 60) + " min";
  }

  function countDown(table) { // "due in 28 s, at 14:03:12", as templating.due says it
    var serverNow = parseFloat(table.dataset.saqNow || "0"), shownAt = Date.now();
    var ticker = setInterval(function () {
      if (!table.isConnected) return clearInterval(ticker);
      var now = serverNow + (Date.now() - shownAt) / 1000;
      table.querySelectorAll(".saq-due[data-due]").forEach(function (due) {
        var ahead = parseFloat(due.dataset.due) - now;
        var clock = due.textContent.replace(/^.*, at /, "");
        due.textContent = "due " + (ahead >= 0 ? "in " + ago(ahead) : "since " + ago(-ahead)) +
          ", at " + clock;
      });
    }, 1000);
  }

  function load(toolbar, requestId, token) {
    return fetch("/_debug_toolbar/" + encodeURIComponent(requestId), { cache: "no-store" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (page) {
        var doc = new DOMParser().parseFromString(page, "text/html");
        var table = doc.querySelector("#panel-SAQPanel [data-saq-panel]");
        var details = toolbar.element.querySelector(".toolbar-details");
        if (!table || !details || toolbar.activePanel !== "SAQPanel") return null;
        if (toolbar.saqFollowing !== token) return null;
        var shown = document.importNode(table, true);
        details.replaceChildren(shown);
        countDown(shown);
        return shown;
      });
  }

  function follow(toolbar, requestId, token, table) {
    var checkedAt = Date.now();
    var ticker = null;
    function open() {
      return toolbar.saqFollowing === token && toolbar.activePanel === "SAQPanel" &&
        table !== null && table.isConnected;
    }
    function say(text, live) {
      var fresh = table && table.querySelector("[data-saq-fresh]");
      if (!fresh) return;
      fresh.textContent = text;
      fresh.classList.toggle("saq-live", live);
    }
    function stop(text) {
      if (ticker !== null) clearInterval(ticker);
      if (text && open()) say(text, false);
    }
    ticker = setInterval(function () {
      if (!open()) return stop();
      say("following · updated " + ago((Date.now() - checkedAt) / 1000) + " ago", true);
    }, 1000);
    function poll() {
      if (!open()) return stop();
      fetch(table.dataset.saqStatus, { cache: "no-store" })
        .then(function (response) {
          if (response.status === 404) return null; // the trace is gone from this process
          if (!response.ok) throw new Error("status " + response.status);
          return response.json();
        })
        .then(function (status) {
          if (status === null) return stop("no longer held by this process");
          checkedAt = Date.now() - 1000 * (status.checked_ago_s || 0);
          var reload = status.version.jobs !== table.dataset.saqVersion
            ? load(toolbar, requestId, token) : Promise.resolve(table);
          return reload.then(function (shown) {
            if (shown === null) return stop();
            table = shown;
            if (!status.following) {
              return stop(table.dataset.saqLive === "1"
                ? "no longer followed (the watch window is over)" : "final");
            }
            setTimeout(poll, (status.poll_seconds || 1) * 1000);
          });
        })
        .catch(function () {
          if (!open()) return stop();
          say("following · the app did not answer, asking again", true);
          setTimeout(poll, 2000);
        });
    }
    setTimeout(poll, 1000);
  }

  proto.renderPanelById = function (panelId, data, requestId) {
    var html = generic.apply(this, arguments);
    if (panelId !== "SAQPanel" || !requestId) return html;
    var toolbar = this;
    var token = {};
    toolbar.saqFollowing = token; // a newer render ends the older one's polling
    load(toolbar, requestId, token)
      .then(function (table) {
        if (table && table.dataset.saqLive === "1" && table.dataset.saqStatus) {
          follow(toolbar, requestId, token, table);
        }
      })
      .catch(function () { /* the generic table stays */ });
    return html;
  };
})();
