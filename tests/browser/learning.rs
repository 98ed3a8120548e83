//! Learning across incidents in the browser: a similar earlier incident suggested while a
//! title is typed, and a chat export imported, promoted and shown in the post-mortem.

use hindsight::auth::Role;
use serde_json::json;

use crate::app::TestApp;
use crate::webdriver::Browser;
use crate::{PASSWORD, flash, sign_in};

const SLACK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http/fixtures/slack");

#[test]
fn responder_is_shown_a_similar_incident_and_builds_its_timeline_from_chat() {
    let app = TestApp::spawn();
    app.add_service("checkout", "Storefront");
    let rita = app.add_user(
        "rita@example.com",
        "Rita Responder",
        Role::Responder,
        PASSWORD,
    );
    app.declare(
        &rita,
        "Checkout returns 502: database pool exhausted",
        "checkout",
    );
    app.declare(&rita, "Payments webhook signature rejected", "checkout");
    let browser =
        Browser::start("responder_is_shown_a_similar_incident_and_builds_its_timeline_from_chat");
    sign_in(&browser, &app, "rita@example.com");

    // Typing a title close to INC-1's: it is suggested (live region), then opened.
    browser.goto(&app.url("/incidents/new"));
    browser.find("#title").send_keys("db pool exhau");
    let suggested = "[data-similar-url] a[href='/incidents/INC-1']";
    browser.wait_until("INC-1 to be suggested", || {
        !browser.find_all(suggested).is_empty()
    });
    assert!(
        browser
            .find_all("[data-similar-url] a[href='/incidents/INC-2']")
            .is_empty()
    );
    let live = browser.find("[data-similar-url]");
    assert_eq!(live.attribute("aria-live").as_deref(), Some("polite"));
    browser.click_and_wait(&browser.find(suggested));
    assert_eq!(browser.current_path(), "/incidents/INC-1");

    // Import the channel's export: users and one day's messages.
    browser.goto(&app.url("/incidents/INC-1/evidence"));
    browser.find("#evidence-files").send_keys(&format!(
        "{SLACK}/users.json\n{SLACK}/incident-checkout/2026-11-20.json"
    ));
    browser
        .click_and_wait(&browser.find("form[enctype='multipart/form-data'] button[type=submit]"));
    let told = flash(&browser);
    assert!(told.contains("Imported 6 messages"), "{told}");
    assert!(told.contains("Masked before saving"), "{told}");

    // Promote three messages from the pane beside the timeline, each with its marker.
    for (needle, marker) in [
        ("FIRING", "detection"),
        ("pool is at 2 connections", "diagnosis"),
        ("roll back release 42", "decision"),
    ] {
        browser.goto(&app.url("/incidents/INC-1"));
        let form_id = browser.execute(
            "const li = [...document.querySelectorAll('#evidence .evidence-message')]
                 .find(li => li.textContent.includes(arguments[0]));
             return li ? li.querySelector('select').id : null;",
            vec![json!(needle)],
        );
        let select = form_id
            .as_str()
            .unwrap_or_else(|| panic!("{needle} in the pane"));
        browser
            .find(&format!("#{select} option[value={marker}]"))
            .click();
        browser.click_and_wait(&browser.find(&format!("#{select} ~ button[type=submit]")));
        assert!(
            flash(&browser).contains("Added to the timeline"),
            "{needle}"
        );
    }
    let on_timeline = browser.find("#timeline").text();
    assert!(
        on_timeline.contains("pool is at 2 connections"),
        "{on_timeline}"
    );

    // The post-mortem's timeline and its Markdown export show the markers.
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    browser.click_and_wait(
        &browser.find("form[action='/incidents/INC-1/postmortem'] button[type=submit]"),
    );
    browser.goto(&app.url("/incidents/INC-1/postmortem"));
    let markers: Vec<String> = browser
        .find_all("#timeline .badge.marker")
        .iter()
        .map(|m| m.text())
        .collect();
    assert_eq!(markers, ["detection", "diagnosis", "decision"]);
    let md = browser.execute(
        "return fetch('/incidents/INC-1/postmortem.md', {credentials: 'same-origin'}).then(r => r.text());",
        vec![],
    );
    let md = md.as_str().unwrap_or_default();
    for marker in ["**detection**", "**diagnosis**", "**decision**"] {
        assert!(md.contains(marker), "{marker} in {md}");
    }
    assert!(md.contains("pool is at 2 connections"));

    // At 390 px the pane stacks under the timeline's column instead of squeezing it.
    browser.set_width(390);
    browser.goto(&app.url("/incidents/INC-1"));
    let widths = browser.execute(
        "return [document.querySelector('#evidence').getBoundingClientRect().width,
                 document.querySelector('#timeline').getBoundingClientRect().width];",
        vec![],
    );
    let (pane, timeline) = (
        widths[0].as_f64().unwrap_or(0.0),
        widths[1].as_f64().unwrap_or(0.0),
    );
    assert!(
        (pane - timeline).abs() < 2.0,
        "stacked full width: {pane} vs {timeline}"
    );
}
