// The table component: any <table data-table> gets a search box, a status filter (when its rows
// carry data-status; data-filter-label names it, "Status" by default), sortable column headers (th[data-sort]) and pages of data-page-size rows.
// The server renders every row, so without JavaScript the table is whole and still usable.
// A cell's data-value, when present, is what it sorts by (dates, names without the id below).
(function () {
  "use strict";

  function text(cell) {
    if (!cell) return "";
    var value = cell.getAttribute("data-value");
    return (value !== null ? value : cell.textContent).trim();
  }

  function enhance(table, index) {
    var tbody = table.tBodies[0];
    if (!tbody) return;
    var rows = Array.prototype.slice.call(tbody.rows);
    var pageSize = parseInt(table.getAttribute("data-page-size") || "10", 10);
    var state = { query: "", status: "", column: -1, direction: 1, page: 0 };
    var id = table.id || "table-" + index;
    var label = table.getAttribute("aria-label") || "rows";

    var tools = document.createElement("div");
    tools.className = "table-tools";
    var search = document.createElement("label");
    search.innerHTML = "Search " + label.toLowerCase() + ' <input type="search" id="' + id + '-search">';
    tools.appendChild(search);
    var input = search.querySelector("input");

    var statuses = [];
    rows.forEach(function (row) {
      var s = row.getAttribute("data-status");
      if (s && statuses.indexOf(s) < 0) statuses.push(s);
    });
    var select = null;
    if (statuses.length) {
      var filter = document.createElement("label");
      var what = table.getAttribute("data-filter-label") || "Status";
      filter.innerHTML = what + ' <select id="' + id + '-status"><option value="">Any</option></select>';
      select = filter.querySelector("select");
      statuses.sort().forEach(function (s) {
        var option = document.createElement("option");
        option.value = s;
        option.textContent = s;
        select.appendChild(option);
      });
      tools.appendChild(filter);
    }
    var count = document.createElement("span");
    count.className = "count";
    count.setAttribute("aria-live", "polite");
    count.id = id + "-count";
    tools.appendChild(count);
    table.parentNode.insertBefore(tools, table);

    var pager = document.createElement("nav");
    pager.className = "pager";
    pager.setAttribute("aria-label", label + " pages");
    pager.innerHTML =
      '<button type="button" data-page="prev">Previous page</button>' +
      '<span class="muted" data-page="where"></span>' +
      '<button type="button" data-page="next">Next page</button>';
    table.parentNode.insertBefore(pager, table.nextSibling);
    var prev = pager.querySelector('[data-page="prev"]');
    var next = pager.querySelector('[data-page="next"]');
    var where = pager.querySelector('[data-page="where"]');

    var headers = Array.prototype.slice.call(table.tHead.rows[0].cells);
    headers.forEach(function (th, column) {
      if (!th.hasAttribute("data-sort")) return;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "sort";
      button.textContent = th.textContent;
      th.textContent = "";
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        state.direction = state.column === column ? -state.direction : 1;
        state.column = column;
        headers.forEach(function (h) {
          if (h.hasAttribute("data-sort")) h.setAttribute("aria-sort", "none");
        });
        th.setAttribute("aria-sort", state.direction > 0 ? "ascending" : "descending");
        render();
      });
    });

    function matching() {
      var query = state.query.toLowerCase();
      var kept = rows.filter(function (row) {
        if (state.status && row.getAttribute("data-status") !== state.status) return false;
        return !query || row.textContent.toLowerCase().indexOf(query) >= 0;
      });
      if (state.column >= 0) {
        kept.sort(function (a, b) {
          var x = text(a.cells[state.column]);
          var y = text(b.cells[state.column]);
          return x.localeCompare(y, undefined, { numeric: true, sensitivity: "base" }) * state.direction;
        });
      }
      return kept;
    }

    function render() {
      var kept = matching();
      var pages = Math.max(1, Math.ceil(kept.length / pageSize));
      state.page = Math.min(state.page, pages - 1);
      var first = state.page * pageSize;
      rows.forEach(function (row) { row.hidden = true; });
      kept.forEach(function (row, i) {
        tbody.appendChild(row);
        row.hidden = i < first || i >= first + pageSize;
      });
      count.textContent = kept.length === rows.length
        ? rows.length + " " + (rows.length === 1 ? "row" : "rows")
        : kept.length + " of " + rows.length + " rows match";
      where.textContent = kept.length
        ? "Rows " + (first + 1) + "–" + Math.min(first + pageSize, kept.length) + " of " + kept.length
        : "No rows match";
      prev.disabled = state.page === 0;
      next.disabled = state.page >= pages - 1;
      pager.hidden = pages <= 1;
    }

    input.addEventListener("input", function () {
      state.query = input.value;
      state.page = 0;
      render();
    });
    if (select) {
      select.addEventListener("change", function () {
        state.status = select.value;
        state.page = 0;
        render();
      });
    }
    prev.addEventListener("click", function () { state.page -= 1; render(); });
    next.addEventListener("click", function () { state.page += 1; render(); });
    render();
  }

  document.querySelectorAll("table[data-table]").forEach(enhance);
})();
