// Touchpoint dashboard: CSV downloads of every table and charts drawn with
// uPlot from the numbers of the table next to them (so every chart's numbers
// are also in a table). No other script runs on the pages.
"use strict";
(function () {
  function cellValue(td) {
    return td.hasAttribute("data-v") ? td.getAttribute("data-v") : td.textContent;
  }
  function csvField(s) {
    return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
  }
  function tableCsv(table) {
    var lines = [];
    table.querySelectorAll("tr").forEach(function (tr) {
      var cells = tr.querySelectorAll("th, td");
      if (cells.length === 1 && cells[0].classList.contains("empty")) return;
      var row = [];
      cells.forEach(function (c) { row.push(csvField(cellValue(c).trim())); });
      lines.push(row.join(","));
    });
    return lines.join("\r\n") + "\r\n";
  }
  document.querySelectorAll("button.csv").forEach(function (b) {
    b.addEventListener("click", function () {
      var id = b.getAttribute("data-table");
      var table = document.getElementById(id);
      if (!table) return;
      var blob = new Blob([tableCsv(table)], { type: "text/csv;charset=utf-8" });
      var a = document.createElement("a");
      a.href = URL.createObjectURL(blob);
      var page = location.pathname.replace(/^\//, "").replace(/\//g, "-") || "overview";
      a.download = page + "-" + id + ".csv";
      document.body.appendChild(a);
      a.click();
      setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 0);
    });
  });

  var palette = ["#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#dc2626", "#ca8a04", "#4b5563"];

  function columns(table, x, series) {
    var head = [], xs = [], ys = series.map(function () { return []; });
    table.querySelectorAll("thead th").forEach(function (th) { head.push(th.textContent); });
    table.querySelectorAll("tbody tr").forEach(function (tr, i) {
      var tds = tr.querySelectorAll("td");
      if (tds.length <= x) return;
      var xv = cellValue(tds[x]);
      var d = /^\d{4}-\d{2}-\d{2}$/.test(xv) ? Date.parse(xv + "T00:00:00Z") / 1000
        : /^\d{4}-\d{2}$/.test(xv) ? Date.parse(xv + "-01T00:00:00Z") / 1000 : parseFloat(xv);
      xs.push(isNaN(d) ? i : d);
      // An empty cell is no value (a gap in a line), not zero.
      series.forEach(function (c, j) {
        var v = cellValue(tds[c]);
        ys[j].push(v === "" ? null : parseFloat(v) || 0);
      });
    });
    return { head: head, xs: xs, ys: ys, time: xs.length > 0 && table.querySelector("tbody td") && /^\d{4}-/.test(cellValue(table.querySelector("tbody td"))) };
  }

  function draw(el) {
    if (typeof uPlot === "undefined") return;
    var table = document.getElementById(el.getAttribute("data-table"));
    if (!table) return;
    var kind = el.getAttribute("data-kind");
    var x = parseInt(el.getAttribute("data-x"), 10);
    var series = el.getAttribute("data-series").split(",").filter(Boolean).map(Number);
    var c = columns(table, x, series);
    // Money cells hold minor units: draw currency units.
    if (el.getAttribute("data-money") === "1" && kind !== "stacked") {
      c.ys = c.ys.map(function (ys) { return ys.map(function (v) { return v === null ? null : v / 100; }); });
    }
    if (c.xs.length === 0) { el.textContent = "No data in this scope."; return; }
    var data = [c.xs], opts = {
      width: Math.max(320, el.clientWidth || 800), height: 260,
      scales: { x: { time: !!c.time } },
      series: [{}],
      legend: { show: true },
      // Room for labels such as 1,200,000 on the y axis.
      axes: [{}, { size: 72 }],
    };
    if (kind === "bars") {
      c.xs = c.xs.map(function (_, i) { return i; });
      data = [c.xs];
      opts.scales.x = { time: false };
    }
    if (kind === "stacked") {
      // Cumulative series, drawn top first so each band shows its channel.
      var acc = c.xs.map(function () { return 0; }), stacked = [];
      c.ys.forEach(function (ys) {
        acc = acc.map(function (a, i) { return a + (ys[i] || 0) / 100; });
        stacked.push(acc.slice());
      });
      stacked.forEach(function (ys) { data.push(ys); });
      series.forEach(function (col, j) {
        opts.series.push({ label: c.head[col], stroke: palette[j % palette.length], fill: palette[j % palette.length] + "55", width: 1 });
      });
      // Paint the largest (top) band first.
      var order = data.slice(1).map(function (_, i) { return i; }).reverse();
      data = [data[0]].concat(order.map(function (i) { return data[i + 1]; }));
      opts.series = [opts.series[0]].concat(order.map(function (i) { return opts.series[i + 1]; }));
    } else {
      c.ys.forEach(function (ys, j) {
        data.push(ys);
        var s = { label: c.head[series[j]], stroke: palette[j % palette.length], width: 2 };
        if (kind === "bars") {
          s.fill = palette[j % palette.length] + "aa";
          s.paths = uPlot.paths.bars({ size: [0.8, 60] });
        }
        opts.series.push(s);
      });
    }
    el.textContent = "";
    new uPlot(opts, data, el);
  }
  function drawAll() { document.querySelectorAll(".plot").forEach(draw); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", drawAll);
  else drawAll();

  // The period picker: dates only matter for a custom period.
  var period = document.querySelector("form.filters select[name=period]");
  if (period) {
    period.form.addEventListener("submit", function () {
      if (period.value !== "custom") {
        period.form.querySelectorAll("input[type=date]").forEach(function (i) { i.disabled = true; });
      }
      period.form.querySelectorAll("select").forEach(function (s) { if (s.value === "") s.disabled = true; });
    });
  }
})();
