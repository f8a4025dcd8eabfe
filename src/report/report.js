// Sorting and filtering of the snapshot table. Plain JavaScript, no library, nothing fetched:
// the exporter often runs where there is no internet. Cell text is only read, never written as
// HTML, so names from vCenter stay text.
(function () {
  "use strict";
  var table = document.getElementById("snapshots");
  var body = table.tBodies[0];
  var headers = table.tHead.rows[0].cells;
  var rows = Array.prototype.slice.call(body.rows);
  var filter = document.getElementById("filter");
  var shown = document.getElementById("shown");
  var sorted = { column: -1, descending: false };

  function sortKey(row, column, numeric) {
    var cell = row.cells[column];
    var value = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent;
    if (!numeric) {
      return value.toLowerCase();
    }
    var number = parseFloat(value);
    return isNaN(number) ? -Infinity : number;
  }

  function sortBy(column) {
    var header = headers[column];
    var numeric = header.getAttribute("data-type") === "number";
    var descending = sorted.column === column
      ? !sorted.descending
      : header.getAttribute("data-first") === "descending";
    sorted = { column: column, descending: descending };
    var keyed = rows.map(function (row, index) {
      return { row: row, key: sortKey(row, column, numeric), index: index };
    });
    keyed.sort(function (a, b) {
      var order = a.key < b.key ? -1 : (a.key > b.key ? 1 : 0);
      return (descending ? -order : order) || a.index - b.index;
    });
    var fragment = document.createDocumentFragment();
    keyed.forEach(function (k) { fragment.appendChild(k.row); });
    body.appendChild(fragment);
    for (var i = 0; i < headers.length; i++) {
      headers[i].removeAttribute("aria-sort");
    }
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function applyFilter() {
    var query = filter.value.trim().toLowerCase();
    var count = 0;
    rows.forEach(function (row) {
      var match = query === "" || row.textContent.toLowerCase().indexOf(query) >= 0;
      row.hidden = !match;
      if (match) {
        count++;
      }
    });
    shown.textContent = String(count);
  }

  Array.prototype.forEach.call(headers, function (header, column) {
    header.querySelector("button").addEventListener("click", function () { sortBy(column); });
  });
  filter.addEventListener("input", applyFilter);
  applyFilter();
}());
