// Live Workspace rows: one Server-Sent Events stream per row whose status is changing
// (see emustudio/web/events.py). Progress and status update in place; once the Workspace
// settles the stream closes and, if the status changed, the page reloads for its buttons.
(function () {
  "use strict";
  var CHANGING = ["Starting", "Stopping", "Deleting", "Attaching", "Detaching"];

  function field(row, name) {
    return row.querySelector('[data-field="' + name + '"]');
  }

  function follow(row) {
    var initial = row.dataset.status;
    var source = new EventSource(row.dataset.events);
    source.addEventListener("progress", function (event) {
      // Progress shows under the status while it changes (no column of its own).
      field(row, "reason").textContent = event.data;
    });
    source.addEventListener("status", function (event) {
      var state = JSON.parse(event.data);
      var status = field(row, "status");
      row.dataset.status = state.status;
      status.textContent = state.status;
      status.className = "status status-" + state.status.toLowerCase();
      if (state.reason) field(row, "reason").textContent = state.reason;
      field(row, "zone").textContent = state.zone || "";
      field(row, "subnet").textContent = state.subnet || "";
    });
    source.addEventListener("done", function () {
      source.close();
      if (row.dataset.status !== initial) {
        window.location.reload();
      }
    });
    source.onerror = function () {
      source.close();
    };
  }

  document.querySelectorAll("tr[data-editor]").forEach(function (row) {
    if (CHANGING.indexOf(row.dataset.status) >= 0) {
      follow(row);
    }
  });
})();
