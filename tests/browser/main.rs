//! Browser tests: a real headless Chromium, driven through chromedriver, uses Hindsight the
//! way a person does (forms, redirects, cookies, CSRF checks included). They need the Debian
//! packages chromium and chromium-driver and fail, naming them, when those are missing.

mod app;
mod axe;
mod webdriver;

mod learning;
mod sso;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use hindsight::auth::Role;

use app::TestApp;
use webdriver::Browser;

const PASSWORD: &str = "correct horse battery staple";

/// Signs in through the login form and lands on the incident list.
fn sign_in(browser: &Browser, app: &TestApp, email: &str) {
    browser.goto(&app.url("/login"));
    browser.find("#email").send_keys(email);
    browser.find("#password").send_keys(PASSWORD);
    browser.click_and_wait(&browser.find("form[action='/login'] button[type=submit]"));
    assert_eq!(
        browser.current_path(),
        "/",
        "signing in lands on home, with what is waiting for this person"
    );
    assert_eq!(
        browser.find(".who-name").attribute("title").as_deref(),
        Some(email),
        "the header names who is signed in"
    );
}

/// What a `datetime-local` input holds for `at` (the test server shows times in UTC).
fn local_input(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M").to_string()
}

/// Sets a `datetime-local` input. Typing into one depends on the browser's locale, so the
/// value is set the way the picker itself would, with the events it fires.
fn set_time(browser: &Browser, css: &str, at: DateTime<Utc>) {
    let input = browser.find(css);
    input.clear();
    browser.execute(
        "arguments[0].value = arguments[1];
         arguments[0].dispatchEvent(new Event('input', {bubbles: true}));
         arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        vec![input.to_arg(), local_input(at).into()],
    );
    let now_holds = browser.execute("return arguments[0].value;", vec![input.to_arg()]);
    assert_eq!(now_holds, local_input(at).as_str(), "{css} holds the time");
}

/// Adds an entry through the form under the timeline and waits for the page to show it.
fn add_timeline_entry(browser: &Browser, at: DateTime<Utc>, kind: &str, body: &str) {
    let before = browser.find_all("ol.timeline > li.entry").len();
    set_time(browser, "#entry-time", at);
    browser
        .find(&format!("#entry-kind option[value='{kind}']"))
        .click();
    let text = browser.find("#entry-body");
    text.clear();
    text.send_keys(body);
    browser.click_and_wait(&browser.find("#add-entry button[type=submit]"));
    browser.wait_until("the new entry on the timeline", || {
        browser.find_all("ol.timeline > li.entry").len() == before + 1
    });
    assert!(
        browser
            .find(".flash")
            .text()
            .contains("Added to the timeline"),
        "the page confirms the entry was added"
    );
}

/// One timeline entry as the page shows it.
#[derive(Debug)]
struct ShownEntry {
    class: String,
    datetime: String,
    text: String,
}

fn shown_timeline(browser: &Browser) -> Vec<ShownEntry> {
    browser
        .find_all("ol.timeline > li.entry")
        .iter()
        .map(|li| ShownEntry {
            class: li.attribute("class").unwrap_or_default(),
            datetime: li
                .find_all("time")
                .first()
                .and_then(|t| t.attribute("datetime"))
                .unwrap_or_default(),
            text: li.text(),
        })
        .collect()
}

fn position(entries: &[ShownEntry], needle: &str) -> usize {
    entries
        .iter()
        .position(|e| e.text.contains(needle))
        .unwrap_or_else(|| {
            panic!("no timeline entry shows {needle:?}; the timeline is {entries:#?}")
        })
}

#[test]
fn responder_declares_an_incident_and_keeps_its_timeline() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    app.add_user(
        "rita@example.com",
        "Rita Responder",
        Role::Responder,
        PASSWORD,
    );
    let browser = Browser::start("responder_declares_an_incident_and_keeps_its_timeline");
    sign_in(&browser, &app, "rita@example.com");

    // Declare through the form.
    let now = Utc::now();
    let title = "Checkout returns 502 after deploy";
    browser.click_and_wait(&browser.find("a[href='/incidents/new']"));
    browser.find("#title").send_keys(title);
    browser.find("input[name=severity][value=sev1]").click();
    browser.find("#service option[value=checkout]").click();
    browser.find("#category option[value=deploy]").click();
    browser
        .find("#customer_impact")
        .send_keys("About 30% of checkout attempts failed.");
    browser
        .find("#summary")
        .send_keys("A release shipped a connection pool of 2.");
    // The quick buttons beside Started fill in a time relative to now (the server shows UTC).
    browser
        .find("[data-quick-times] [data-minutes-ago='15']")
        .click();
    let quick = browser.execute(
        "return document.querySelector('#started_at').value;",
        vec![],
    );
    // The browser normalises a time whose seconds are 00 to `…T20:52` (no `:00`).
    let quick = quick.as_str().unwrap_or_default();
    let quick = chrono::NaiveDateTime::parse_from_str(quick, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(quick, "%Y-%m-%dT%H:%M"))
        .expect("a full local time")
        .and_utc();
    let expected = Utc::now() - Duration::minutes(15);
    assert!(
        (quick - expected).num_seconds().abs() <= 60,
        "−15 min gives {quick}, about {expected}"
    );
    set_time(&browser, "#started_at", now - Duration::minutes(60));
    browser.click_and_wait(
        &browser.find("form[action='/incidents'][method=post] button[type=submit]"),
    );
    assert_eq!(
        browser.current_path(),
        "/incidents/INC-1",
        "declaring opens the new incident"
    );
    assert!(browser.find(".flash").text().contains("INC-1 declared"));

    // Two entries of different kinds, typed out of order: the later one first.
    let detected = now - Duration::minutes(40);
    let rolled_back = now - Duration::minutes(25);
    add_timeline_entry(
        &browser,
        rolled_back,
        "action",
        "Rolled back release 2026.11.3.",
    );
    add_timeline_entry(
        &browser,
        detected,
        "detection",
        "Alert fired: checkout 5xx above 5%.",
    );

    // Move the incident on, with a note.
    browser.find("#status option[value=identified]").click();
    browser
        .find("#status-note")
        .send_keys("Pool size of 2 in the release config.");
    browser.click_and_wait(&browser.find(".status-form button[type=submit]"));
    assert!(
        browser
            .find(".flash")
            .text()
            .contains("INC-1 is now identified")
    );

    // What the responder now sees.
    assert!(
        browser.find("h1").text().contains(title),
        "the page shows the title"
    );
    let badge = browser.find(".badges .status");
    assert_eq!(
        badge.text(),
        "identified",
        "the status badge shows the new status"
    );
    assert!(
        badge
            .attribute("class")
            .unwrap_or_default()
            .contains("status-identified")
    );

    // A note added right after, its time left as the page rendered it (empty, with a live
    // clock in the hint): stamped when it arrives, so it stays below the status change.
    let empty = browser.execute(
        "return document.querySelector('#entry-time').value;",
        vec![],
    );
    assert_eq!(empty, "", "the add-entry time starts empty");
    let first_tick = browser.find("[data-live-clock]").text();
    assert!(first_tick.contains("now "), "a live clock: {first_tick:?}");
    browser.wait_until("the clock to tick", || {
        browser.find("[data-live-clock]").text() != first_tick
    });
    let before = browser.find_all("ol.timeline > li.entry").len();
    browser.find("#entry-kind option[value='note']").click();
    browser
        .find("#entry-body")
        .send_keys("Config fix prepared.");
    browser.click_and_wait(&browser.find("#add-entry button[type=submit]"));
    browser.wait_until("the note on the timeline", || {
        browser.find_all("ol.timeline > li.entry").len() == before + 1
    });

    let timeline = shown_timeline(&browser);
    let detection = position(&timeline, "Alert fired: checkout 5xx above 5%.");
    let action = position(&timeline, "Rolled back release 2026.11.3.");
    let change = position(&timeline, "Status: investigating → identified");
    let note = position(&timeline, "Config fix prepared.");
    assert!(
        detection < action && action < change && change < note,
        "entries are in time order: {timeline:#?}"
    );
    assert!(
        timeline[detection].class.contains("kind-detection"),
        "{timeline:#?}"
    );
    assert!(
        timeline[action].class.contains("kind-action"),
        "{timeline:#?}"
    );
    assert!(
        timeline[change].class.contains("kind-status_change"),
        "{timeline:#?}"
    );
    assert!(
        timeline[change]
            .text
            .contains("Pool size of 2 in the release config."),
        "the status note is on the timeline: {timeline:#?}"
    );
    assert!(
        timeline[detection]
            .text
            .contains(&detected.format("%Y-%m-%d %H:%M").to_string()),
        "the entry shows the time that was typed: {timeline:#?}"
    );
    let times: Vec<&str> = timeline.iter().map(|e| e.datetime.as_str()).collect();
    assert!(
        times
            .iter()
            .all(|t| DateTime::parse_from_rfc3339(t).is_ok()),
        "every entry carries its time: {times:?}"
    );
    let mut sorted = times.clone();
    sorted.sort_by_key(|t| DateTime::parse_from_rfc3339(t).ok());
    assert_eq!(times, sorted, "the whole timeline is in time order");

    browser.screenshot(&browser.screenshot_path("done"));
}

#[test]
fn viewer_sees_the_incident_page_without_any_edit_forms() {
    let app = TestApp::spawn();
    app.add_service("payments", "Payments");
    let responder = app.add_user(
        "rita@example.com",
        "Rita Responder",
        Role::Responder,
        PASSWORD,
    );
    app.add_user("vic@example.com", "Vic Viewer", Role::Viewer, PASSWORD);
    let number = app.declare(&responder, "Card payments declined by provider", "payments");
    let browser = Browser::start("viewer_sees_the_incident_page_without_any_edit_forms");
    sign_in(&browser, &app, "vic@example.com");
    assert!(
        browser.find_all("a[href='/incidents/new']").is_empty(),
        "a viewer is not offered to declare incidents"
    );

    browser.goto(&app.url(&format!("/incidents/{number}")));
    assert!(
        browser
            .find("h1")
            .text()
            .contains("Card payments declined by provider")
    );
    assert_eq!(browser.find(".badges .status").text(), "investigating");
    let timeline = shown_timeline(&browser);
    position(&timeline, "Incident declared by Rita Responder");
    for css in [
        "select#status",
        "#status-note",
        "form#add-entry",
        "#entry-body",
        ".entry-actions",
        "a[href$='/edit']",
        "main form",
    ] {
        assert!(
            browser.find_all(css).is_empty(),
            "a viewer's incident page has no {css}"
        );
    }
    // The only form left on the page is signing out.
    let forms: Vec<String> = browser
        .find_all("form[method=post]")
        .iter()
        .map(|f| f.attribute("action").unwrap_or_default())
        .collect();
    assert_eq!(forms, ["/logout"]);
    browser.screenshot(&browser.screenshot_path("incident"));

    // Typing the edit address does not bring the form either.
    browser.goto(&app.url(&format!("/incidents/{number}/edit")));
    assert!(
        browser
            .find("main")
            .text()
            .contains("needs the responder role")
    );
    assert!(
        browser.find_all("#title").is_empty(),
        "no edit form for a viewer"
    );

    browser.screenshot(&browser.screenshot_path("edit-refused"));
}

/// Sets a `date` input to `YYYY-MM-DD` the way the picker would (typing depends on the locale).
fn set_date(browser: &Browser, css: &str, on: NaiveDate) {
    let value = on.format("%Y-%m-%d").to_string();
    let input = browser.find(css);
    browser.execute(
        "arguments[0].value = arguments[1];
         arguments[0].dispatchEvent(new Event('input', {bubbles: true}));
         arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        vec![input.to_arg(), value.clone().into()],
    );
    let now_holds = browser.execute("return arguments[0].value;", vec![input.to_arg()]);
    assert_eq!(now_holds, value.as_str(), "{css} holds the date");
}

/// Adds an action item through the form reached from the incident page's section.
fn add_action_item(browser: &Browser, title: &str, owner: &str, priority: &str, due: NaiveDate) {
    browser.click_and_wait(
        &browser.find("section#action-items a[href='/incidents/INC-1/action-items/new']"),
    );
    assert_eq!(browser.current_path(), "/incidents/INC-1/action-items/new");
    browser.find("#title").send_keys(title);
    browser
        .find(&format!("#owner option[value='{owner}']"))
        .click();
    browser
        .find(&format!("#priority option[value='{priority}']"))
        .click();
    set_date(browser, "#due_on", due);
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/action-items'] button[type=submit]"),
    );
    assert_eq!(
        browser.current_path(),
        "/incidents/INC-1",
        "adding an item goes back to the incident"
    );
    assert!(
        browser.current_url().ends_with("#action-items"),
        "and to its action items: {}",
        browser.current_url()
    );
    let flash = browser.find(".flash").text();
    assert!(
        flash.contains(&format!("Added the action item {title}")),
        "the page confirms the item was added: {flash:?}"
    );
    assert!(
        browser.find("section#action-items").text().contains(title),
        "the section lists {title:?}"
    );
}

/// The incident page's action items progress: (`value`, `max`) of the bar and the section text.
fn incident_items_progress(browser: &Browser) -> (String, String, String) {
    let bar = browser.find("section#action-items progress");
    (
        bar.attribute("value").unwrap_or_default(),
        bar.attribute("max").unwrap_or_default(),
        browser.find("section#action-items").text(),
    )
}

/// The current week's (last) cell of the Closed row on the progress page.
fn closed_this_week(browser: &Browser, app: &TestApp) -> String {
    browser.goto(&app.url("/action-items/progress"));
    let rows = browser.find_all("table tr");
    let row = rows
        .iter()
        .find(|tr| {
            tr.find_all("th")
                .first()
                .is_some_and(|th| th.text().trim() == "Closed")
        })
        .expect("the weekly table has a Closed row");
    row.find_all("td")
        .last()
        .map(|td| td.text().trim().to_owned())
        .expect("the Closed row has a cell per week")
}

/// The count on the board's quick filter labelled `label`.
fn quick_count(browser: &Browser, label: &str) -> String {
    let links = browser.find_all(".quick");
    let shown: Vec<(String, String)> = links
        .iter()
        .map(|a| {
            let count = a
                .find_all(".count-badge")
                .first()
                .map(|b| b.text().trim().to_owned())
                .unwrap_or_default();
            let text = a.text();
            let name = text
                .trim()
                .trim_end_matches(count.as_str())
                .trim()
                .to_owned();
            (name, count)
        })
        .collect();
    shown
        .iter()
        .find(|(name, _)| name == label)
        .map(|(_, count)| count.clone())
        .unwrap_or_else(|| panic!("no quick filter {label:?}; the board shows {shown:?}"))
}

#[test]
fn responder_tracks_action_items_from_incident_to_board() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let rita = app.add_user(
        "rita@example.com",
        "Rita Responder",
        Role::Responder,
        PASSWORD,
    );
    let number = app.declare(&rita, "Checkout returns 502 after deploy", "checkout");
    assert_eq!(number, "INC-1");
    let browser = Browser::start("responder_tracks_action_items_from_incident_to_board");
    sign_in(&browser, &app, "rita@example.com");

    // An incident starts without action items.
    browser.goto(&app.url("/incidents/INC-1"));
    assert!(
        browser
            .find("section#action-items")
            .text()
            .contains("No action items yet."),
        "the section says there is nothing yet"
    );

    let due = Utc::now().date_naive() + Duration::days(14);
    // The first item comes out of the post-mortem, written on its page.
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/postmortem'] button[type=submit]"),
    );
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    browser.find("#item-title").send_keys("Add a canary stage");
    browser
        .find("#item-owner option[value='rita@example.com']")
        .click();
    browser.find("#item-priority option[value=p1]").click();
    set_date(&browser, "#item-due", due);
    browser.click_and_wait(&browser.find("#add-item button[type=submit]"));
    assert_eq!(
        browser.current_path(),
        "/incidents/INC-1/postmortem",
        "adding an item from the post-mortem stays on it"
    );
    assert!(
        browser
            .find("section#action-items")
            .text()
            .contains("Add a canary stage")
    );
    // The second from the incident page.
    browser.goto(&app.url("/incidents/INC-1"));
    add_action_item(
        &browser,
        "Write the failover runbook",
        "rita@example.com",
        "p2",
        due,
    );

    let (value, max, section) = incident_items_progress(&browser);
    assert!(section.contains("0 of 2 done"), "{section}");
    assert!(section.contains("1 p1 still open"), "{section}");
    assert!(!section.contains("No action items yet."), "{section}");
    assert_eq!(
        (value.as_str(), max.as_str()),
        ("0", "2"),
        "the progress bar"
    );

    assert_eq!(
        closed_this_week(&browser, &app),
        "0",
        "nothing closed this week yet"
    );

    // The board lists both; close one of them in bulk.
    browser.goto(&app.url("/action-items"));
    let rows: Vec<String> = browser
        .find_all("table tbody tr")
        .iter()
        .map(|tr| tr.text())
        .collect();
    assert_eq!(rows.len(), 2, "the board lists both items: {rows:#?}");
    for title in ["Add a canary stage", "Write the failover runbook"] {
        assert!(
            rows.iter().any(|r| r.contains(title)),
            "the board lists {title:?}: {rows:#?}"
        );
    }
    assert_eq!(quick_count(&browser, "Open"), "2");
    let rows = browser.find_all("table tbody tr");
    let runbook = rows
        .iter()
        .find(|tr| tr.text().contains("Write the failover runbook"))
        .expect("the runbook's row");
    let boxes = runbook.find_all("input[type=checkbox][name=ids]");
    assert_eq!(boxes.len(), 1, "the row has a checkbox");
    boxes[0].click();
    browser.find("#bulk-status option[value=done]").click();
    let change = browser
        .find_all("form[action='/action-items/bulk'] button[type=submit]")
        .into_iter()
        .find(|b| b.text().contains("Change selected"))
        .expect("a Change selected button");
    browser.click_and_wait(&change);
    assert_eq!(browser.current_path(), "/action-items");
    let flash = browser.find(".flash").text();
    assert!(
        flash.contains("Changed 1 action item(s)."),
        "the board confirms the change: {flash:?}"
    );
    assert_eq!(quick_count(&browser, "Open"), "1");
    assert_eq!(quick_count(&browser, "Done"), "1");

    // The incident shows the progress, and the p1 is still flagged.
    browser.goto(&app.url("/incidents/INC-1"));
    let (value, max, section) = incident_items_progress(&browser);
    assert!(section.contains("1 of 2 done"), "{section}");
    assert!(section.contains("1 p1 still open"), "{section}");
    assert_eq!(
        (value.as_str(), max.as_str()),
        ("1", "2"),
        "the progress bar"
    );

    assert_eq!(
        closed_this_week(&browser, &app),
        "1",
        "the item closed today counts in this week"
    );
    browser.screenshot(&browser.screenshot_path("progress"));
}

/// Replaces what a textarea or input holds with `text`, typed as a person would.
fn retype(browser: &Browser, css: &str, text: &str) {
    let field = browser.find(css);
    field.clear();
    field.send_keys(text);
}

/// The flash message of the page just loaded.
fn flash(browser: &Browser) -> String {
    browser.find(".flash").text()
}

#[test]
fn author_writes_reviews_publishes_and_exports_a_post_mortem() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let ada = app.add_user("ada@example.com", "Ada Author", Role::Responder, PASSWORD);
    app.add_user(
        "grace@example.com",
        "Grace Reviewer",
        Role::Responder,
        PASSWORD,
    );
    app.declare(&ada, "Checkout returns 502 after deploy", "checkout");
    let browser = Browser::start("author_writes_reviews_publishes_and_exports_a_post_mortem");
    sign_in(&browser, &app, "ada@example.com");

    // Start from the incident page, with the severity's default template.
    browser.goto(&app.url("/incidents/INC-1"));
    browser.click_and_wait(&browser.find("section#postmortem a.button"));
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem");
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/postmortem'] button[type=submit]"),
    );
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem/edit");
    let help = browser.find("#help-root_cause").text();
    assert!(help.contains("What in the system"), "{help}");

    // Live preview while typing: rendered Markdown and a gentle blameless-language hint.
    retype(
        &browser,
        "#s-summary",
        "Checkout returned **502** for 23 minutes. It was human error.",
    );
    browser.wait_until("the live preview", || {
        browser
            .find_all("#preview-summary .prose strong")
            .first()
            .is_some_and(|s| s.text() == "502")
    });
    let hint = browser.find("#preview-summary .findings").text();
    assert!(hint.contains("Blameless language"), "{hint}");
    assert!(hint.contains("human error"), "{hint}");

    // The Preview button does the same on the server, and saves nothing.
    retype(
        &browser,
        "#s-summary",
        "Checkout returned **502** for 23 minutes after a config push.",
    );
    for (key, text) in [
        ("impact", "About 4% of checkouts failed."),
        ("trigger", "A config push set the payment timeout to 0."),
        ("root_cause", "The config schema allowed a zero timeout."),
        ("detection", "The 5xx alert paged after 4 minutes."),
        ("resolution", "Rolled the config back."),
    ] {
        retype(&browser, &format!("#s-{key}"), text);
    }
    browser
        .find("#primary-category option[value='config change']")
        .click();
    retype(
        &browser,
        "#primary-description",
        "Zero was a valid timeout value.",
    );
    browser.click_and_wait(&browser.find("button[name=action][value=preview]"));
    assert!(flash(&browser).contains("nothing is saved"));
    assert_eq!(browser.find("#preview-summary .prose strong").text(), "502");
    browser.screenshot(&browser.screenshot_path("edit-preview"));
    browser.click_and_wait(&browser.find("button[name=action][value=save]"));
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem");
    assert!(
        flash(&browser).contains("Saved as version 2"),
        "{}",
        flash(&browser)
    );
    assert!(
        browser
            .find("#section-summary")
            .text()
            .contains("502 for 23 minutes after a config push")
    );
    assert!(
        browser
            .find("#root-causes")
            .text()
            .contains("config change")
    );

    // Both people open the summary at version 2; Grace saves first.
    let second = Browser::start("author_writes_reviews_publishes_and_exports_a_post_mortem-grace");
    sign_in(&second, &app, "grace@example.com");
    second.goto(&app.url("/incidents/INC-1/postmortem/edit?section=summary"));
    browser.goto(&app.url("/incidents/INC-1/postmortem/edit?section=summary"));
    retype(
        &second,
        "#s-summary",
        "Checkout failed for 23 minutes (Grace's wording).",
    );
    second.click_and_wait(&second.find("button[name=action][value=save]"));
    assert!(flash(&second).contains("Saved as version 3"));

    retype(
        &browser,
        "#s-summary",
        "Checkout failed for 23 minutes after a config push (Ada's wording).",
    );
    browser.click_and_wait(&browser.find("button[name=action][value=save]"));
    let heading = browser.find("h1").text();
    assert!(
        heading.contains("saved this post-mortem while you were editing"),
        "{heading}"
    );
    let theirs = browser.execute(
        "return document.getElementById('theirs-summary').value;",
        vec![],
    );
    assert_eq!(theirs, "Checkout failed for 23 minutes (Grace's wording).");
    let yours = browser.execute(
        "return document.getElementById('yours-summary').value;",
        vec![],
    );
    assert_eq!(
        yours, "Checkout failed for 23 minutes after a config push (Ada's wording).",
        "what Ada typed is kept"
    );
    browser.screenshot(&browser.screenshot_path("conflict"));
    retype(
        &browser,
        "#yours-summary",
        "Checkout failed for 23 minutes after a config push.",
    );
    browser.click_and_wait(&browser.find("button[name=action][value=save]"));
    assert!(
        flash(&browser).contains("Saved as version 4"),
        "{}",
        flash(&browser)
    );
    assert!(
        browser
            .find("#section-summary")
            .text()
            .contains("Checkout failed for 23 minutes after a config push.")
    );

    // An action item from the post-mortem page itself.
    retype(
        &browser,
        "#item-title",
        "Reject zero timeouts in the config schema",
    );
    browser.find("#item-priority option[value=p1]").click();
    browser.click_and_wait(&browser.find("#add-item button[type=submit]"));
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem");
    let items = browser.find("section#action-items").text();
    assert!(
        items.contains("Reject zero timeouts in the config schema"),
        "{items}"
    );
    assert!(items.contains("0 of 1 done"), "{items}");

    // Ask Grace to review; she approves.
    browser.find("details.ask-review summary").click();
    browser
        .find("input[name=reviewer][value='grace@example.com']")
        .click();
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/postmortem/reviewers'] button[type=submit]"),
    );
    assert!(flash(&browser).contains("Review requested from Grace Reviewer"));
    assert_eq!(browser.find(".page-head .pm-status").text(), "In review");

    second.goto(&app.url("/incidents/INC-1/postmortem"));
    retype(&second, "#review-comment", "Clear and blameless. Ship it.");
    second.click_and_wait(&second.find("button[name=decision][value=approve]"));
    assert!(flash(&second).contains("You approved"));

    // Ada publishes; the open p1 item is pointed out but does not block.
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    assert!(browser.find(".reviewers").text().contains("Approved"));
    browser.click_and_wait(&browser.find("button[name=status][value=published]"));
    let published = flash(&browser);
    assert!(
        published.contains("Published, but p1 action items are still open"),
        "{published}"
    );
    assert_eq!(browser.find(".page-head .pm-status").text(), "Published");
    assert!(
        browser
            .find_all("a[href='/incidents/INC-1/postmortem/edit']")
            .is_empty(),
        "a published post-mortem is read-only"
    );
    browser.screenshot(&browser.screenshot_path("published"));

    // The Markdown export, as the download link fetches it.
    let link = browser.find("a[href='/incidents/INC-1/postmortem.md']");
    assert!(link.attribute("download").is_some());
    let markdown = browser.execute(
        "return fetch('/incidents/INC-1/postmortem.md', {credentials: 'same-origin'}).then(r => r.text());",
        vec![],
    );
    let markdown = markdown.as_str().unwrap_or_default();
    assert!(
        markdown.starts_with("# Post-mortem: INC-1 Checkout returns 502 after deploy"),
        "{markdown}"
    );
    assert!(markdown.contains("## Summary\n\nCheckout failed for 23 minutes after a config push."));
    assert!(markdown.contains("**Primary: config change.** Zero was a valid timeout value."));
    assert!(markdown.contains("Reject zero timeouts in the config schema"));
    assert!(markdown.contains("| Status | Published |"));

    // The print view is the document alone.
    browser.goto(&app.url("/incidents/INC-1/postmortem/print"));
    assert!(
        browser
            .find_all(".topbar")
            .iter()
            .all(|t| !t.is_displayed())
    );
    browser.screenshot(&browser.screenshot_path("print"));
}

#[test]
fn lead_reviews_the_week_follows_a_recurring_category_and_exports_markdown() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let rita = app.add_user(
        "rita@example.com",
        "Rita Responder",
        Role::Responder,
        PASSWORD,
    );
    app.add_user("lea@example.com", "Lea Lead", Role::Viewer, PASSWORD);
    // Three deploy incidents: one in the last complete week, two in the weeks before.
    let week = hindsight::reports::IsoWeek::last_complete(Utc::now().date_naive());
    let tuesday = week.monday() + Duration::days(1);
    for (title, day) in [
        ("Deploy broke the cart", tuesday - Duration::days(35)),
        ("Deploy broke payments", tuesday - Duration::days(14)),
        ("Deploy broke checkout again", tuesday),
    ] {
        let started = format!("{day}T10:00:00Z");
        app.declare_with(
            &rita,
            serde_json::json!({"title": title, "severity": "sev2", "service": "checkout",
                               "category": "deploy", "started_at": started}),
        );
    }
    let browser =
        Browser::start("lead_reviews_the_week_follows_a_recurring_category_and_exports_markdown");
    sign_in(&browser, &app, "lea@example.com");

    // The lead opens the review from the navigation: the last complete week by default.
    browser.click_and_wait(&browser.find("nav.nav a[href='/reports/weekly']"));
    assert_eq!(browser.current_path(), "/reports/weekly");
    let heading = browser.find("h1").text();
    assert!(
        heading.contains(&format!("Weekly review {}", week.label())),
        "{heading}"
    );
    let incidents = browser.find("#incidents").text();
    assert!(
        incidents.contains("Deploy broke checkout again"),
        "{incidents}"
    );
    assert!(
        !incidents.contains("Deploy broke payments"),
        "an earlier week's incident"
    );

    // deploy recurs (three in the window); its link leads to those incidents on the list.
    let recurring = browser.find("#recurring").text();
    assert!(recurring.contains("deploy"), "{recurring}");
    assert!(recurring.contains("3 in 90 days"), "{recurring}");
    browser.screenshot(&browser.screenshot_path("weekly"));
    browser.click_and_wait(&browser.find("#recurring a.recurring-link"));
    assert_eq!(browser.current_path(), "/incidents");
    let rows: Vec<String> = browser
        .find_all("table.incidents tbody tr")
        .iter()
        .map(|tr| tr.text())
        .collect();
    assert_eq!(rows.len(), 3, "the category's incidents: {rows:#?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Deploy broke checkout again") && r.contains("recurring")),
        "the newest is marked recurring: {rows:#?}"
    );

    // Back on the review, the Markdown export is what the lead pastes into the notes.
    browser.goto(&app.url("/reports/weekly"));
    let href = browser
        .find("#export-md")
        .attribute("href")
        .expect("the export link");
    assert_eq!(href, format!("/reports/weekly.md?week={}", week.label()));
    let fetched = browser.execute(
        "var x = new XMLHttpRequest(); x.open('GET', arguments[0], false); x.send();
         return [x.status, x.getResponseHeader('content-type'), x.responseText];",
        vec![href.into()],
    );
    assert_eq!(fetched[0], 200);
    assert!(
        fetched[1]
            .as_str()
            .is_some_and(|t| t.starts_with("text/markdown")),
        "{fetched}"
    );
    let markdown = fetched[2].as_str().unwrap_or_default();
    assert!(
        markdown.starts_with(&format!("# Weekly review {}", week.label())),
        "{markdown}"
    );
    assert!(markdown.contains("### deploy — "), "{markdown}");
    assert!(
        markdown.contains("Deploy broke checkout again"),
        "{markdown}"
    );
}

/// The value a form field holds now (what the person sees in it).
fn field_value(browser: &Browser, css: &str) -> String {
    browser
        .execute(
            "return document.querySelector(arguments[0]).value",
            vec![serde_json::json!(css)],
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Whether leaving the page now would ask "leave site?" (the page's beforeunload handler
/// cancels the event).
fn would_warn_on_leaving(browser: &Browser) -> bool {
    browser.execute(
        "const e = new Event('beforeunload', {cancelable: true}); \
         window.dispatchEvent(e); return e.defaultPrevented;",
        vec![],
    ) == serde_json::json!(true)
}

#[test]
fn typed_post_mortem_text_survives_leaving_the_editor() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let ada = app.add_user("ada@example.com", "Ada Author", Role::Responder, PASSWORD);
    app.declare(&ada, "Checkout returns 502 after deploy", "checkout");
    let browser = Browser::start("typed_post_mortem_text_survives_leaving_the_editor");
    sign_in(&browser, &app, "ada@example.com");
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/postmortem'] button[type=submit]"),
    );
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem/edit");

    // Typing is kept as a draft a moment after it stops, and the page says so.
    let typed = "The pool held 2 connections; normal load needs 40.";
    retype(&browser, "#s-summary", typed);
    browser.wait_until("the draft to be kept", || {
        browser
            .find("[data-autosave-status]")
            .text()
            .contains("Draft kept")
    });

    // Leaving with unsaved text asks first (chromedriver answers that prompt by itself, so
    // the test asks the page whether it would); leaving anyway loses nothing.
    assert!(would_warn_on_leaving(&browser), "unsaved text warns");
    browser.click_and_wait(&browser.find(".crumbs a[href='/incidents/INC-1']"));
    assert_eq!(browser.current_path(), "/incidents/INC-1");
    browser.goto(&app.url("/incidents/INC-1/postmortem/edit"));
    assert!(
        would_warn_on_leaving(&browser),
        "a restored draft is still unsaved"
    );
    assert_eq!(field_value(&browser, "#s-summary"), typed);
    let notice = browser.find(".draft-restored").text();
    assert!(notice.contains("your unsaved draft"), "{notice}");
    browser.screenshot(&browser.screenshot_path("draft-restored"));

    // Saving keeps it for good; the editor then shows no draft.
    browser.click_and_wait(&browser.find("button[name=action][value=save]"));
    assert_eq!(browser.current_path(), "/incidents/INC-1/postmortem");
    assert!(
        flash(&browser).contains("Saved as version 2"),
        "{}",
        flash(&browser)
    );
    assert!(browser.find(".pm-doc").text().contains(typed));
    browser.goto(&app.url("/incidents/INC-1/postmortem/edit"));
    assert!(browser.find_all(".draft-restored").is_empty());
    assert!(
        !would_warn_on_leaving(&browser),
        "nothing typed since loading: leaving is quiet"
    );
    assert_eq!(field_value(&browser, "#s-summary"), typed);
}

/// The unread count on the header's inbox link ("" when there is none).
fn inbox_badge(browser: &Browser) -> String {
    browser
        .find_all(".inbox-badge")
        .first()
        .map(|b| b.text())
        .unwrap_or_default()
}

#[test]
fn author_and_reviewer_are_told_and_the_published_post_mortem_stays_as_published() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let ada = app.add_user("ada@example.com", "Ada Author", Role::Responder, PASSWORD);
    app.add_user(
        "grace@example.com",
        "Grace Reviewer",
        Role::Responder,
        PASSWORD,
    );
    app.declare(&ada, "Checkout returns 502 after deploy", "checkout");
    let ada_browser = Browser::start("journey-ada");
    let grace_browser = Browser::start("journey-grace");
    sign_in(&ada_browser, &app, "ada@example.com");
    sign_in(&grace_browser, &app, "grace@example.com");
    assert_eq!(
        inbox_badge(&grace_browser),
        "",
        "nothing waits for Grace yet"
    );

    // Ada writes the post-mortem; a token slipped into Detection.
    ada_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    ada_browser.click_and_wait(
        &ada_browser.find("form[action='/incidents/INC-1/postmortem'] button[type=submit]"),
    );
    for (key, text) in [
        (
            "summary",
            "Checkout returned 502 for 23 minutes after a config push.",
        ),
        ("impact", "About 4% of checkouts failed."),
        ("trigger", "A config push set the payment timeout to 0."),
        ("root_cause", "The config schema allowed a zero timeout."),
        (
            "detection",
            "The 5xx alert paged; the deploy used ghp_abcdefghijklmnopqrstuvwxyz0123456789.",
        ),
        ("resolution", "Rolled the config back."),
    ] {
        retype(&ada_browser, &format!("#s-{key}"), text);
    }
    ada_browser
        .find("#primary-category option[value='config change']")
        .click();
    retype(
        &ada_browser,
        "#primary-description",
        "Zero was a valid timeout.",
    );
    retype(
        &ada_browser,
        "#no-items",
        "The timeout setting is being removed entirely.",
    );
    ada_browser.click_and_wait(&ada_browser.find("button[name=action][value=save]"));
    assert!(flash(&ada_browser).contains("Saved as version 2"));
    ada_browser.find("details.ask-review summary").click();
    ada_browser
        .find("input[name=reviewer][value='grace@example.com']")
        .click();
    ada_browser.click_and_wait(
        &ada_browser
            .find("form[action='/incidents/INC-1/postmortem/reviewers'] button[type=submit]"),
    );

    // Grace sees it waiting in her header, opens it from her inbox and asks for a change.
    grace_browser.goto(&app.url("/"));
    assert_eq!(inbox_badge(&grace_browser), "1");
    grace_browser.click_and_wait(&grace_browser.find("a.inbox-link"));
    let message = grace_browser.find(".inbox-message.unread").text();
    assert!(
        message.contains("Ada Author asked you to review the post-mortem"),
        "{message}"
    );
    grace_browser.screenshot(&grace_browser.screenshot_path("inbox"));
    grace_browser.click_and_wait(&grace_browser.find(".inbox-message button"));
    assert_eq!(grace_browser.current_path(), "/incidents/INC-1/postmortem");
    assert_eq!(inbox_badge(&grace_browser), "", "opened is read");
    retype(
        &grace_browser,
        "#review-comment",
        "Take the token out of Detection and rotate it.",
    );
    grace_browser
        .click_and_wait(&grace_browser.find("button[name=decision][value=request_changes]"));

    // Ada is told, with what to change; she asks Grace again in one click.
    ada_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    assert_eq!(inbox_badge(&ada_browser), "1");
    ada_browser.goto(&app.url("/inbox"));
    let told = ada_browser.find(".inbox-message.unread").text();
    assert!(
        told.contains(
            "Grace Reviewer requested changes to your post-mortem: “Take the token out of Detection and rotate it.”"
        ),
        "{told}"
    );
    ada_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    ada_browser.click_and_wait(&ada_browser.find("form.ask-again button"));
    grace_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    assert_eq!(inbox_badge(&grace_browser), "1", "asked again");
    retype(&grace_browser, "#review-comment", "Fine once rotated.");
    grace_browser.click_and_wait(&grace_browser.find("button[name=decision][value=approve]"));

    // Publishing with the flagged token asks first, naming it; Ada publishes anyway.
    ada_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    ada_browser.click_and_wait(&ada_browser.find("button[name=status][value=published]"));
    let question = ada_browser.find("h1").text();
    assert!(
        question.contains("Publish with possible secrets or personal data?"),
        "{question}"
    );
    ada_browser.click_and_wait(&ada_browser.find(".confirm-actions button[value=published]"));
    assert_eq!(
        ada_browser.find(".page-head .pm-status").text(),
        "Published"
    );
    assert!(
        !ada_browser
            .find("body")
            .text()
            .contains("Take the token out of Detection"),
        "review comments are not on the published page"
    );

    // The incident goes on; the published document does not change.
    ada_browser.goto(&app.url("/incidents/INC-1"));
    retype(
        &ada_browser,
        "#entry-body",
        "Token rotated by the platform team.",
    );
    ada_browser.click_and_wait(&ada_browser.find("#add-entry button[type=submit]"));
    ada_browser.goto(&app.url("/incidents/INC-1/postmortem"));
    let document = ada_browser.find(".pm-doc").text();
    assert!(!document.contains("Token rotated"), "{document}");
    let since = ada_browser.find(".since-publishing").text();
    assert!(
        since.contains("Token rotated by the platform team."),
        "{since}"
    );
    ada_browser.screenshot(&ada_browser.screenshot_path("since-publishing"));
    let markdown = ada_browser.execute(
        "return fetch('/incidents/INC-1/postmortem.md', {credentials: 'same-origin'}).then(r => r.text());",
        vec![],
    );
    assert!(
        !markdown
            .as_str()
            .unwrap_or_default()
            .contains("Token rotated"),
        "the export is the published document"
    );
}

/// Every page, signed out and signed in as an admin, goes through the accessibility check that
/// `Browser::goto` runs (axe-core, WCAG 2.0/2.1/2.2 A and AA, at 1280 and 390 px): the flows
/// above reach most pages; this reaches the rest (admin pages, lists, search, error pages).
#[test]
fn every_page_passes_the_accessibility_check_signed_in_and_out() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Payments");
    let admin = app.add_user("ada@example.com", "Ada Admin", Role::Admin, PASSWORD);
    let number = app.declare(&admin, "Checkout returns 502", "checkout");
    let browser = Browser::start("accessibility");
    for path in ["/login", "/setup/not-a-real-link", "/no-such-page"] {
        browser.goto(&app.url(path));
    }
    sign_in(&browser, &app, "ada@example.com");
    browser.goto(&app.url(&format!("/incidents/{number}/postmortem")));
    if let Some(start) = browser
        .find_all("form[action$='/postmortem'] button[type=submit]")
        .first()
    {
        browser.click_and_wait(start);
    }
    for path in [
        "/",
        "/incidents",
        "/incidents/new",
        &format!("/incidents/{number}"),
        &format!("/incidents/{number}/edit"),
        &format!("/incidents/{number}/postmortem/history"),
        "/postmortems",
        &format!("/incidents/{number}/postmortem/edit"),
        "/inbox",
        "/search?q=checkout",
        "/services",
        "/services/checkout",
        "/alerts",
        "/alerts/rules",
        "/action-items",
        "/action-items/progress",
        "/reports/weekly",
        "/admin/users",
        "/admin/tokens",
        "/admin/services",
        "/admin/categories",
        "/admin/templates",
        "/admin/templates/new",
        "/admin/integrations",
        "/no-such-page",
        "/account",
        "/account/sessions",
        "/insights",
        "/reports/weekly/subscriptions",
    ] {
        browser.goto(&app.url(path));
    }
}

/// The account page is one click away from the header (at phone width too), and changing the
/// password there names a wrong current password and then confirms the change.
#[test]
fn a_person_changes_their_password_from_their_name_in_the_header() {
    let app = TestApp::spawn();
    app.add_user("bo@example.com", "Bo Responder", Role::Responder, PASSWORD);
    let browser = Browser::start("account");
    sign_in(&browser, &app, "bo@example.com");
    browser.set_width(390);
    let link = browser.find(".who-name");
    assert!(
        link.is_displayed(),
        "the account link stays in the header on a phone"
    );
    browser.click_and_wait(&link);
    assert_eq!(browser.current_path(), "/account");
    browser.set_width(1280);

    let new = "a fresh passphrase for bo";
    let submit = |current: &str| {
        browser.find("#current").send_keys(current);
        browser.find("#new").send_keys(new);
        browser.find("#confirm").send_keys(new);
        browser
            .click_and_wait(&browser.find("form[action='/account/password'] button[type=submit]"));
    };
    submit("not my password at all");
    assert!(
        browser
            .find("#current-error")
            .text()
            .contains("is not your current password")
    );
    submit(PASSWORD);
    assert_eq!(browser.current_path(), "/account");
    assert!(
        flash(&browser).contains("Your password is changed"),
        "{}",
        flash(&browser)
    );
    browser.goto(&app.url("/account/sessions"));
    assert!(
        browser
            .find(".badge.ok-badge")
            .text()
            .contains("this session")
    );
}
