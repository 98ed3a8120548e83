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

// Post-mortem editing: a live preview (rendered Markdown and the writing checks) under each
// textarea while typing. Without JavaScript the Preview button does the same on the server.
for (const area of document.querySelectorAll("textarea[data-preview-url]")) {
  const target = document.getElementById(area.dataset.previewTarget);
  if (!target) continue;
  let timer = null;
  let sent = null;
  const refresh = async () => {
    if (area.value === sent) return;
    sent = area.value;
    try {
      const response = await fetch(area.dataset.previewUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ text: area.value }),
      });
      if (response.ok) {
        target.innerHTML = '<p class="preview-label">Preview</p>' + await response.text();
        target.classList.remove("js-preview");
      }
    } catch (_) {
      // Offline for a moment: the Preview button still works.
    }
  };
  area.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refresh, 400);
  });
}

// Conflict page: copy the saved text into the one being merged.
for (const button of document.querySelectorAll("button[data-copy-from]")) {
  button.hidden = false;
  button.addEventListener("click", () => {
    const from = document.getElementById(button.dataset.copyFrom);
    const to = document.getElementById(button.dataset.copyTo);
    if (from && to) to.value = from.value;
  });
}

// The add-entry form's time is empty until someone types one: the server stamps the entry when
// it arrives. A live clock beside the hint shows what that time will be, in the configured zone.
for (const clock of document.querySelectorAll("[data-live-clock]")) {
  let format;
  try {
    format = new Intl.DateTimeFormat(undefined, {
      timeZone: clock.dataset.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
    });
  } catch {
    format = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  }
  const tick = () => { clock.textContent = ` (now ${format.format(new Date())})`; };
  tick();
  setInterval(tick, 1000);
}

// Quick times beside Started: "now", "−5 min", … fill the field with that wall-clock time in
// the configured zone (the field stays editable; without JavaScript it is typed or left empty).
for (const box of document.querySelectorAll("[data-quick-times]")) {
  const input = document.getElementById(box.dataset.quickTimes);
  if (!input) continue;
  let parts;
  try {
    parts = new Intl.DateTimeFormat("en-CA", {
      timeZone: box.dataset.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
    });
  } catch {
    continue;
  }
  const local = (date) => {
    const p = Object.fromEntries(parts.formatToParts(date).map((x) => [x.type, x.value]));
    return `${p.year}-${p.month}-${p.day}T${p.hour}:${p.minute}:${p.second}`;
  };
  for (const button of box.querySelectorAll("[data-minutes-ago]")) {
    button.addEventListener("click", () => {
      const minutes = Number(button.dataset.minutesAgo);
      input.value = local(new Date(Date.now() - minutes * 60000));
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });
  }
  box.hidden = false;
}

// The print view's Print button (the page also prints as is from the browser's menu).
for (const button of document.querySelectorAll("button[data-print]")) {
  button.addEventListener("click", () => window.print());
}

// The post-mortem editor: keeps a draft on the server a moment after typing stops (restored
// when the person comes back), and warns before leaving with changes that are not saved.
for (const form of document.querySelectorAll("form[data-autosave-url]")) {
  const status = form.querySelector("[data-autosave-status]");
  const snapshot = () => new URLSearchParams(new FormData(form)).toString();
  // A restored draft is itself unsaved: leaving warns until it is saved or discarded.
  const saved = form.dataset.restored === "true" ? null : snapshot();
  let kept = snapshot();
  let timer = null;
  let submitting = false;
  const say = (text) => { if (status) status.textContent = text; };
  const keep = async () => {
    const body = snapshot();
    if (submitting || body === kept) return;
    try {
      const response = await fetch(form.dataset.autosaveUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
        body,
      });
      const answer = response.headers.get("Content-Type")?.includes("json") ? await response.json() : {};
      if (response.ok && answer.kept) {
        kept = body;
        say("Draft kept at " + answer.saved_at_text + " (not saved yet)");
      } else {
        say(answer.message || "The draft could not be kept; your text is still on this page.");
      }
    } catch (_) {
      say("Offline: the draft could not be kept; your text is still on this page.");
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(keep, 1500);
  };
  form.addEventListener("input", soon);
  form.addEventListener("change", soon);
  form.addEventListener("submit", () => {
    submitting = true;
    clearTimeout(timer);
  });
  window.addEventListener("beforeunload", (event) => {
    if (!submitting && snapshot() !== saved) {
      event.preventDefault();
      event.returnValue = "";
    }
  });
}
