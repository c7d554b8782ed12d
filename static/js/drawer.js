// The approval drawer: a <dialog> swapped into #drawer-root by htmx (loaded with defer).
document.addEventListener("htmx:afterSettle", function () {
  document.querySelectorAll("#drawer-root dialog[data-drawer]:not([open])").forEach(function (dialog) {
    dialog.addEventListener("close", function () { dialog.remove(); });
    dialog.showModal();
  });
});
document.body.addEventListener("drawer-close", function () {
  document.querySelectorAll("#drawer-root dialog[data-drawer][open]").forEach(function (dialog) {
    dialog.close();
  });
});
