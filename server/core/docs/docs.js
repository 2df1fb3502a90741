// Starts Swagger UI from the served assets; the URLs come from data attributes so the page
// needs no inline script (the Content-Security-Policy allows scripts from this origin only).
window.addEventListener("load", function () {
  var root = document.getElementById("openapi");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    configUrl: root.dataset.configUrl,
    oauth2RedirectUrl: root.dataset.oauth2RedirectUrl,
    dom_id: "#openapi",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
});
