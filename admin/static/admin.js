// The admin pages' few behaviours (no inline script: the CSP allows scripts from this origin
// only). Charts read their numbers from a JSON block beside them; htmx swaps redraw them.
(function () {
  "use strict";

  function drawCharts(root) {
    if (typeof echarts === "undefined") return;
    root.querySelectorAll("[data-chart='days']").forEach(function (el) {
      var data = JSON.parse(root.querySelector("[data-chart-data='days']").textContent);
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { data: ["收入 (元)", "用电 (kWh)"], top: 0 },
        grid: { left: 56, right: 56, top: 36, bottom: 28 },
        xAxis: { type: "category", data: data.days },
        yAxis: [
          { type: "value", name: "元", nameTextStyle: { align: "right" } },
          { type: "value", name: "kWh", nameTextStyle: { align: "left" }, splitLine: { show: false } },
        ],
        series: [
          { name: "收入 (元)", type: "bar", data: data.income.map(Number), itemStyle: { color: "#0d6efd" } },
          { name: "用电 (kWh)", type: "line", yAxisIndex: 1, data: data.electricity.map(Number), itemStyle: { color: "#fd7e14" } },
        ],
      });
    });
    // A meter's last 30 days, its 换表 chain summed (admin/templates/review/_chain.html).
    root.querySelectorAll("[data-chart='meter-days']").forEach(function (el) {
      var data = JSON.parse(root.querySelector("[data-chart-data='meter-days']").textContent);
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        grid: { left: 56, right: 16, top: 28, bottom: 28 },
        xAxis: { type: "category", data: data.days },
        yAxis: { type: "value", name: data.unit },
        series: [{ name: "用量 (" + data.unit + ")", type: "bar", data: data.quantity.map(Number), itemStyle: { color: "#198754" } }],
      });
    });
    // A room's 30 days (room page, live panel): electricity and water per day, and the money.
    root.querySelectorAll("[data-chart='usage']").forEach(function (el) {
      var data = JSON.parse(el.parentNode.querySelector("[data-chart-data='usage']").textContent);
      var chart = echarts.getInstanceByDom(el) || echarts.init(el, null, { renderer: "svg" });
      chart.setOption({
        animation: false,
        tooltip: { trigger: "axis" },
        legend: { data: ["用电 (kWh)", "用水 (m³)", "金额 (元)"], top: 0 },
        grid: { left: 56, right: 56, top: 36, bottom: 28 },
        xAxis: { type: "category", data: data.days },
        yAxis: [
          { type: "value", name: "kWh / m³", nameTextStyle: { align: "right" } },
          { type: "value", name: "元", nameTextStyle: { align: "left" }, splitLine: { show: false } },
        ],
        series: [
          { name: "用电 (kWh)", type: "bar", data: data.electricity.map(Number), itemStyle: { color: "#fd7e14" } },
          { name: "用水 (m³)", type: "bar", data: data.water.map(Number), itemStyle: { color: "#0dcaf0" } },
          { name: "金额 (元)", type: "line", yAxisIndex: 1, data: data.amount.map(Number), itemStyle: { color: "#0d6efd" } },
        ],
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    drawCharts(document);
    document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
    // Actions ask first: <form data-confirm="确定停用 3 号楼？"> (plain forms; htmx has hx-confirm),
    // or only one of a form's buttons: <button data-confirm="…">.
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var button = event.submitter;
      var question = (button && button.getAttribute && button.getAttribute("data-confirm")) ||
        (form.getAttribute && form.getAttribute("data-confirm"));
      if (question && !window.confirm(question)) event.preventDefault();
    }, true);
    // The tariff editor shows the sections of the chosen shape: <div data-shapes="tou tiered">
    // is shown when one of its words is the value of a select named in data-shape-of.
    function showShapes() {
      var chosen = [];
      document.querySelectorAll("select[data-shape-select]").forEach(function (el) {
        if (!el.closest("[hidden]")) chosen.push(el.value);
      });
      document.querySelectorAll("[data-shapes]").forEach(function (el) {
        var words = el.getAttribute("data-shapes").split(" ");
        el.hidden = !words.some(function (w) { return chosen.indexOf(w) >= 0; });
      });
    }
    document.querySelectorAll("select[data-shape-select]").forEach(function (el) {
      el.addEventListener("change", function () { for (var i = 0; i < 3; i++) showShapes(); });
    });
    for (var pass = 0; pass < 3; pass++) showShapes();
    window.addEventListener("resize", function () {
      document.querySelectorAll("[data-chart]").forEach(function (el) {
        var chart = typeof echarts !== "undefined" && echarts.getInstanceByDom(el);
        if (chart) chart.resize();
      });
    });
  });
  document.addEventListener("htmx:afterSwap", function (event) { drawCharts(event.detail.elt.parentNode || document); });
})();
