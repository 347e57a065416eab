// Live cluster rows: a row whose cluster may change by itself (STARTING, BOOTSTRAPPING, RUNNING
// its steps, TERMINATING) polls its state (GET <prefix>/clusters/<j-id>/state, see
// emustudio/web/clusters.py) and updates in place; once the cluster settles (WAITING or ended)
// the page reloads for the row's links.
(function () {
  "use strict";
  var CHANGING = ["STARTING", "BOOTSTRAPPING", "RUNNING", "TERMINATING"];
  var EVERY_MS = 2000;

  function follow(row) {
    var initial = row.dataset.status;
    var stateCell = row.querySelector('[data-field="state"]');
    var reasonCell = row.querySelector('[data-field="reason"]');
    function poll() {
      fetch(row.dataset.stateUrl, { credentials: "same-origin", cache: "no-store" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (state) {
          if (!state) return;
          row.dataset.status = state.state;
          stateCell.textContent = state.state;
          stateCell.className = "status status-" + state.state.toLowerCase();
          reasonCell.textContent = state.reason || "";
          if (CHANGING.indexOf(state.state) >= 0) {
            window.setTimeout(poll, EVERY_MS);
          } else if (state.state !== initial) {
            window.location.reload();
          }
        })
        .catch(function () { window.setTimeout(poll, EVERY_MS * 5); });
    }
    window.setTimeout(poll, EVERY_MS);
  }

  document.querySelectorAll("tr[data-cluster][data-state-url]").forEach(function (row) {
    if (CHANGING.indexOf(row.dataset.status) >= 0) follow(row);
  });
})();
