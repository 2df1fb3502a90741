// The settlement statement's print button (no inline scripts: the CSP allows this origin only).
document.addEventListener("click", function (event) {
  var button = event.target.closest && event.target.closest("[data-print]");
  if (button) { event.preventDefault(); window.print(); }
});
