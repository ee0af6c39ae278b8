// Sorting (click a column header) and filtering (text box, selects) of every table.sortable; no library.
(function () {
  function cellKey(row, i) {
    var cell = row.cells[i];
    if (!cell) return "";
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
  }
  function compare(x, y) {
    var nx = Number(x), ny = Number(y);
    if (x !== "" && y !== "" && !isNaN(nx) && !isNaN(ny)) return nx - ny;
    return x.localeCompare(y, "zh-CN");
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var tbody = table.tBodies[0];
    var rows = Array.prototype.slice.call(tbody.rows);
    var box = table.getAttribute("data-controls") ? document.getElementById(table.getAttribute("data-controls")) : null;
    function apply() {
      if (!box) return;
      var input = box.querySelector("input[type=search]");
      var text = input ? input.value.trim().toLowerCase() : "";
      var selects = box.querySelectorAll("select[data-key]");
      var shown = 0;
      rows.forEach(function (row) {
        var ok = !text || row.textContent.toLowerCase().indexOf(text) >= 0;
        selects.forEach(function (s) {
          if (s.value && row.getAttribute("data-" + s.getAttribute("data-key")) !== s.value) ok = false;
        });
        row.hidden = !ok;
        if (ok) shown++;
      });
      var count = box.querySelector(".count");
      if (count) count.textContent = shown + " / " + rows.length;
    }
    if (box) { box.addEventListener("input", apply); box.addEventListener("change", apply); }
    var heads = table.tHead.rows[0].cells;
    Array.prototype.forEach.call(heads, function (th, i) {
      th.title = "点击排序 (click to sort)";
      th.addEventListener("click", function () {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(heads, function (h) { h.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        rows.sort(function (a, b) { var r = compare(cellKey(a, i), cellKey(b, i)); return asc ? r : -r; });
        rows.forEach(function (row) { tbody.appendChild(row); });
      });
    });
    apply();
  });
})();
