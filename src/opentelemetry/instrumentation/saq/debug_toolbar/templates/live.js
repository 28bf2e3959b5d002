/* The trace page, live and readable (inlined by trace.html; no markup is built here).
   - Follows: while the server says the trace is live, asks its status endpoint once a
     second and redraws the header and the waterfall when the version differs; stops
     when the status says it is final (no job, span or log line expected) or the watch
     window is over, drawing itself once more to say which (polling, not a push channel,
     as the panel's spec asks).
   - Says how fresh it is ("updated 2 s ago") and counts down due times.
   - Keeps axis labels from overprinting: of two that would touch at this width, the
     lower-ranked one (see trace_layout.ticks) is hidden.
   - Lays each row's label out in the room it has: a label longer than its column runs on
     into the track up to its bar (which sits further right), and is cut with "…" only
     where the bar leaves no room.
   - A click on a row opens its detail pane and shows its label's whole text (a label cut
     with "…"); another click closes both: one state per row, kept in sessionStorage by
     the row's data-row-key, so open panes stay open across reloads and live redraws
     (restorePanes runs at load and after each redraw). A click inside a pane does nothing,
     so its text can be selected; folds opened in it stay open across redraws. */
(function () {
  "use strict";
  var body = document.body;
  var statusUrl = body.dataset.saqStatus;
  var loadedAt = Date.now();
  var serverNow = parseFloat(body.dataset.saqNow || "0");
  var checkedAt = Date.now();
  var live = body.dataset.saqLive === "1";
  var unreachable = false;

  function duration(seconds) {
    var whole = Math.max(0, Math.round(seconds));
    if (whole < 60) return whole + " s";
    if (whole < 3600) return Math.floor(whole / 60) + " min " + (whole % 60) + " s";
    return Math.floor(whole / 3600) + " h " + Math.floor((whole % 3600) / 60) + " min";
  }

  function showFreshness() {
    var fresh = document.querySelector("[data-saq-fresh]");
    if (fresh && live) {
      fresh.classList.add("live");
      fresh.textContent = unreachable
        ? "live · the app did not answer, asking again"
        : "live · updated " + duration((Date.now() - checkedAt) / 1000) + " ago";
    }
    var now = serverNow + (Date.now() - loadedAt) / 1000;
    document.querySelectorAll(".due[data-due]").forEach(function (due) {
      var ahead = parseFloat(due.dataset.due) - now;
      var clock = due.textContent.replace(/^.*, at /, "");
      due.textContent = "due " + (ahead >= 0 ? "in " + duration(ahead) : "since " +
        duration(-ahead)) + ", at " + clock;
    });
  }

  function overlaps(a, b) {
    return a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
  }

  function declutter() {
    var labels = Array.prototype.slice.call(document.querySelectorAll(".axis-label"));
    labels.forEach(function (label) { label.style.visibility = ""; });
    labels.sort(function (a, b) { return (+a.dataset.rank) - (+b.dataset.rank); });
    var kept = [];
    labels.forEach(function (label) {
      var box = label.getBoundingClientRect();
      if (kept.some(function (other) { return overlaps(box, other); })) {
        label.style.visibility = "hidden";
      } else {
        kept.push(box);
      }
    });
  }

  function fitLabels() {
    var labels = Array.prototype.slice.call(document.querySelectorAll("li.row > .label"));
    labels.forEach(function (label) { label.style.marginRight = ""; });
    // All measured first, then all widened: one layout, not one per row.
    var widths = labels.map(function (label) {
      var bar = label.parentNode.querySelector(".bar");
      if (!bar || label.classList.contains("open")) return 0; // an open label wraps whole
      var missing = label.scrollWidth - label.clientWidth;
      var room = bar.getBoundingClientRect().left - label.getBoundingClientRect().right - 8;
      return missing > 0 && room > 0 ? Math.min(missing + 1, room) : 0;
    });
    labels.forEach(function (label, index) {
      if (widths[index]) label.style.marginRight = -widths[index] + "px";
    });
  }

  function layOut() {
    fitLabels();
    declutter();
  }

  var openKey = "saq-open:" + location.pathname;

  function openRows() {
    try { return JSON.parse(sessionStorage.getItem(openKey) || "[]"); } catch (e) { return []; }
  }

  function show(row, open) {
    var pane = row.querySelector(".detail"), label = row.querySelector(".label");
    if (pane) pane.hidden = !open;
    if (label) label.classList.toggle("open", open);
    row.classList.toggle("open", open);
  }

  function restorePanes() {
    var keys = openRows();
    document.querySelectorAll("li.row[data-row-key]").forEach(function (row) {
      show(row, keys.indexOf(row.dataset.rowKey) !== -1);
    });
  }

  function toggle(row) {
    var key = row.dataset.rowKey, open = !row.classList.contains("open");
    show(row, open);
    fitLabels();
    var keys = openRows().filter(function (k) { return k !== key; });
    if (open) keys.push(key);
    try { sessionStorage.setItem(openKey, JSON.stringify(keys)); } catch (e) { /* private mode */ }
  }

  // Folded parts a reader opened (a long log message, library frames), by their row and
  // place in it: a redraw rebuilds them closed, and must not fold what is being read.
  function openFolds() {
    var open = [];
    document.querySelectorAll("li.row[data-row-key]").forEach(function (row) {
      row.querySelectorAll("details").forEach(function (fold, index) {
        if (fold.open) open.push(row.dataset.rowKey + "#" + index);
      });
    });
    return open;
  }

  function reopenFolds(open) {
    document.querySelectorAll("li.row[data-row-key]").forEach(function (row) {
      row.querySelectorAll("details").forEach(function (fold, index) {
        if (open.indexOf(row.dataset.rowKey + "#" + index) !== -1) fold.open = true;
      });
    });
  }

  function swap(page) {
    var opened = openFolds();
    var fresh = new DOMParser().parseFromString(page, "text/html");
    ["header", "main"].forEach(function (part) {
      var now = document.querySelector(part), next = fresh.querySelector(part);
      if (now && next) now.replaceChildren.apply(now, Array.prototype.slice.call(next.childNodes));
    });
    Object.keys(fresh.body.dataset).forEach(function (key) {
      body.dataset[key] = fresh.body.dataset[key];
    });
    restorePanes();
    reopenFolds(opened);
    serverNow = parseFloat(body.dataset.saqNow || "0");
    loadedAt = Date.now();
    layOut();
  }

  function poll() {
    fetch(statusUrl, { cache: "no-store", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (response.status === 404) return { gone: true };
        if (!response.ok) throw new Error("status " + response.status);
        return response.json();
      })
      .then(function (status) {
        unreachable = false;
        if (status.gone) { // the trace left this process's store (or the page's gate)
          live = false;
          var fresh = document.querySelector("[data-saq-fresh]");
          if (fresh) {
            fresh.classList.remove("live");
            fresh.textContent = "no longer held by this process";
          }
          return 0;
        }
        checkedAt = Date.now() - 1000 * (status.checked_ago_s || 0);
        var changed = status.version.page !== body.dataset.saqVersion;
        // Drawn once more when it stops, so that its last words are the server's ("final
        // as shown", or why it is no longer followed), not a guess made here.
        var stopping = !status.live && body.dataset.saqLive === "1";
        var next = changed || stopping
          ? fetch(location.href, { cache: "no-store" }).then(function (r) { return r.text(); })
            .then(swap)
          : Promise.resolve();
        return next.then(function () {
          // The page as drawn decides: it may have become live again since the status.
          live = status.live || (stopping && body.dataset.saqLive === "1");
          return (status.poll_seconds || 1) * 1000;
        });
      })
      .catch(function () { unreachable = true; return 2000; })
      .then(function (wait) {
        showFreshness();
        if (live) setTimeout(poll, wait);
      });
  }

  document.addEventListener("click", function (event) {
    var row = event.target.closest && event.target.closest("li.row[data-row-key]");
    if (row && !event.target.closest(".detail")) toggle(row);
  });
  restorePanes();
  window.addEventListener("resize", layOut);
  window.addEventListener("load", layOut);
  layOut();
  setInterval(showFreshness, 1000);
  if (live && statusUrl) setTimeout(poll, 1000);
})();
