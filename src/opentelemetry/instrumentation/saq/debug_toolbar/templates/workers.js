/* The workers page, polled while open and visible (as the trace page follows a trace):
   every data-saq-poll seconds it reads the page again and swaps its header and main;
   it stops while the tab is hidden and when the page is closed. No push channel. */
(function () {
  "use strict";
  var seconds = parseFloat(document.body.dataset.saqPoll || "2");
  var timer = null;
  var stopped = false;

  function schedule() {
    if (!stopped && timer === null && !document.hidden) {
      timer = setTimeout(poll, seconds * 1000);
    }
  }

  function swap(page) {
    var fresh = new DOMParser().parseFromString(page, "text/html");
    ["header", "main"].forEach(function (part) {
      var now = document.querySelector(part), next = fresh.querySelector(part);
      if (now && next) now.replaceChildren.apply(now, Array.prototype.slice.call(next.childNodes));
    });
  }

  function poll() {
    timer = null;
    fetch(location.href, { cache: "no-store" })
      .then(function (response) {
        if (!response.ok) throw new Error("status " + response.status);
        return response.text();
      })
      .then(swap)
      .catch(function () {
        var fresh = document.querySelector("[data-saq-fresh]");
        if (fresh) fresh.textContent = "the app did not answer, asking again";
      })
      .then(schedule);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.hidden && timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    schedule();
  });
  window.addEventListener("pagehide", function () {
    stopped = true;
    if (timer !== null) clearTimeout(timer);
  });
  schedule();
})();
