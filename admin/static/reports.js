// The report pages (admin/templates/reports/): each chart reads its numbers from the JSON
// block beside it — {kind: "bar" | "line" | "pie", categories, series: [{name, data, axis}],
// axes: [left unit, right unit]} — and the print button prints the print view.
(function () {
  "use strict";
  var COLORS = ["#0d6efd", "#fd7e14", "#198754", "#6f42c1", "#dc3545", "#0dcaf0", "#6c757d"];

  function option(spec) {
    if (spec.kind === "pie") {
      return {
        animation: false, color: COLORS, tooltip: { trigger: "item" },
        legend: { top: 0 },
        series: [{ type: "pie", radius: ["35%", "65%"], top: 24,
          data: spec.categories.map(function (name, i) { return { name: name, value: Number(spec.series[0].data[i]) }; }) }],
      };
    }
    var axes = spec.axes || [""];
    return {
      animation: false, color: COLORS, tooltip: { trigger: "axis" },
      legend: { top: 0 },
      grid: { left: 64, right: axes.length > 1 ? 64 : 16, top: 36, bottom: 28 },
      xAxis: { type: "category", data: spec.categories },
      yAxis: axes.map(function (unit, i) {
        return { type: "value", name: unit, splitLine: { show: i === 0 } };
      }),
      series: spec.series.map(function (s) {
        return { name: s.name, type: s.type || spec.kind, yAxisIndex: s.axis || 0,
          data: s.data.map(function (v) { return v === null ? null : Number(v); }) };
      }),
    };
  }

  function draw() {
    if (typeof echarts === "undefined") return;
    document.querySelectorAll("[data-report-chart]").forEach(function (el) {
      var spec = JSON.parse(el.parentNode.querySelector("[data-report-chart-data]").textContent);
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption(option(spec));
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-print]");
    if (button) { event.preventDefault(); window.print(); }
  });
})();
