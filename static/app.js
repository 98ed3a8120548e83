// Small progressive enhancements; every page works without this file.
"use strict";

// Forms with data-confirm ask before submitting (deletes, disabling accounts).
document.addEventListener("submit", (event) => {
  const form = event.target;
  if (form instanceof HTMLFormElement && form.dataset.confirm) {
    if (!window.confirm(form.dataset.confirm)) {
      event.preventDefault();
    }
  }
});

// Disable a submit button once its form is sent, so a double click does not post twice.
document.addEventListener("submit", (event) => {
  if (event.defaultPrevented) return;
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "post") return;
  for (const button of form.querySelectorAll("button[type=submit]")) {
    setTimeout(() => { button.disabled = true; }, 0);
  }
});

// Live service pages: refresh the figures in place every 5 seconds.
for (const box of document.querySelectorAll("[data-live-url]")) {
  const url = box.dataset.liveUrl;
  setInterval(async () => {
    if (document.hidden) return;
    try {
      const response = await fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } });
      if (response.ok) box.innerHTML = await response.text();
    } catch (_) {
      // Offline for a moment: keep the last figures.
    }
  }, 5000);
}
