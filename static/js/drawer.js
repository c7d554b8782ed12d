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
// The open lists behind the drawer poll (data-poll-visible): a poll carries no triggering
// event, unlike approval-decided, and is skipped while the tab is hidden. (No hx-trigger
// filter: the CSP forbids the eval htmx needs for those.)
document.body.addEventListener("htmx:confirm", function (event) {
  if (document.hidden && !event.detail.triggeringEvent && event.detail.elt.hasAttribute("data-poll-visible")) {
    event.preventDefault();
  }
});
