// Finance charts (admin/templates/finance/): stacked bars per period, their numbers in the
// JSON block beside each chart (the CSP allows no inline script). Loaded by the finance pages.
(function () {
  "use strict";
  var COLORS = ["#198754", "#0d6efd", "#fd7e14", "#6f42c1", "#0dcaf0", "#d63384", "#20c997", "#6c757d", "#ffc107"];

  function draw() {
    if (typeof echarts === "undefined") return;
    document.querySelectorAll("[data-finance-chart]").forEach(function (el) {
      var all = JSON.parse(document.getElementById("income-data").textContent);
      var series = all[el.getAttribute("data-finance-chart")];
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        color: COLORS,
        tooltip: { trigger: "axis" },
        legend: { data: series.map(function (s) { return s.name; }), top: 0 },
        grid: { left: 64, right: 16, top: 36, bottom: 28 },
        xAxis: { type: "category", data: all.periods },
        yAxis: { type: "value", name: "元" },
        series: series.map(function (s) {
          return { name: s.name, type: "bar", stack: "total", data: s.values.map(Number) };
        }),
      });
    });
  }

  document.addEventListener("DOMContentLoaded", draw);
  window.addEventListener("resize", function () {
    document.querySelectorAll("[data-finance-chart]").forEach(function (el) {
      var chart = typeof echarts !== "undefined" && echarts.getInstanceByDom(el);
      if (chart) chart.resize();
    });
  });
})();
