/* The SAQ panel in the docked toolbar: the table the toolbar's request page renders for
   it (server-side, escaped there) replaces the generic key/value table once it loads. */
(function () {
  "use strict";
  if (typeof DebugToolbar !== "function") return;
  var proto = DebugToolbar.prototype;
  var generic = proto.renderPanelById;
  if (typeof generic !== "function" || proto.saqPanelHooked) return;
  proto.saqPanelHooked = true;
  proto.renderPanelById = function (panelId, data, requestId) {
    var html = generic.apply(this, arguments);
    if (panelId !== "SAQPanel" || !requestId) return html;
    var toolbar = this;
    fetch("/_debug_toolbar/" + encodeURIComponent(requestId))
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (page) {
        var doc = new DOMParser().parseFromString(page, "text/html");
        var table = doc.querySelector("#panel-SAQPanel [data-saq-panel]");
        var details = toolbar.element.querySelector(".toolbar-details");
        if (table && details && toolbar.activePanel === "SAQPanel") {
          details.replaceChildren(document.importNode(table, true));
        }
      })
      .catch(function () { /* the generic table stays */ });
    return html;
  };
})();
