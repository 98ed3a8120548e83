// Similar past incidents while a title is typed on the declare form: asks the server (debounced)
// and shows its list in a live region, so screen readers hear when suggestions change. Without
// this script the form shows the same list after submitting, before the incident is created.
"use strict";

for (const box of document.querySelectorAll("[data-similar-url]")) {
  const form = box.closest("form");
  const title = form && form.querySelector("input[name=title]");
  const service = form && form.querySelector("[name=service]");
  const checked = form && form.querySelector("input[name=similar_checked]");
  if (!title) continue;
  // Suggestions are shown live, so the server need not stop the form to show them again.
  if (checked) checked.value = "1";
  let timer = null;
  let sent = null;
  let controller = null;
  const refresh = async () => {
    const params = new URLSearchParams({ title: title.value, service: service ? service.value : "" });
    const query = params.toString();
    if (query === sent) return;
    sent = query;
    if (controller) controller.abort();
    controller = new AbortController();
    if (title.value.trim().length < 3) {
      box.innerHTML = "";
      return;
    }
    try {
      const response = await fetch(box.dataset.similarUrl + "?" + query, {
        credentials: "same-origin",
        headers: { "Accept": "text/html" },
        signal: controller.signal,
      });
      if (response.ok) box.innerHTML = await response.text();
    } catch (_) {
      // Aborted by a newer keystroke, or offline for a moment: keep what is shown.
    }
  };
  const later = () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 250);
  };
  title.addEventListener("input", later);
  if (service) service.addEventListener("change", later);
  if (title.value.trim()) later();
}
