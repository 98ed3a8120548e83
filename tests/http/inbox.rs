//! The inbox: what each person is told (reviews asked, changes requested, approvals, items
//! given, mentions), the header's badge, opening and reading messages, and the API.

use axum::http::{Method, StatusCode};
use hindsight::auth::{Role, Scope};
use serde_json::{Value, json};

use crate::common::{TestApp, TestUser};

/// The header's unread badge on any page, as `who` sees it (`None` when there is none).
async fn badge(app: &TestApp, who: &TestUser) -> Option<String> {
    let page = app.get("/incidents", Some(who)).await;
    page.assert_status(StatusCode::OK);
    page.body
        .split("<span class=\"inbox-badge\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .map(str::to_owned)
}

async fn inbox_api(app: &TestApp, token: &str) -> Value {
    let r = app
        .api(Method::GET, "/api/v1/inbox", Some(token), None)
        .await;
    r.assert_status(StatusCode::OK);
    r.json()
}

fn texts(inbox: &Value) -> Vec<String> {
    inbox["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                m["kind"].as_str().unwrap_or(""),
                m["text"].as_str().unwrap_or("")
            )
        })
        .collect()
}

#[tokio::test]
async fn the_review_moves_by_itself_through_both_inboxes() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let author = app.user(Role::Responder).await;
    let reviewer = app.user(Role::Responder).await;
    let author_token = app.token(&author, Scope::Write).await;
    let reviewer_token = app.token(&reviewer, Scope::Read).await;
    app.declare(
        &author_token,
        json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "unknown"}),
    )
    .await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&author_token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    assert_eq!(badge(&app, &reviewer).await, None);

    // Asked to review: the reviewer's header shows it; the author is not told of their own act.
    app.post_form(
        "/incidents/INC-1/postmortem/reviewers",
        Some(&author),
        &[("reviewer", &reviewer.email)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(badge(&app, &reviewer).await.as_deref(), Some("1"));
    assert_eq!(badge(&app, &author).await, None);
    let theirs = inbox_api(&app, &reviewer_token).await;
    assert_eq!(theirs["unread"], 1);
    assert_eq!(theirs["items"][0]["kind"], "review_requested");
    assert_eq!(theirs["items"][0]["actor"], author.name.as_str());
    assert_eq!(theirs["items"][0]["url"], "/incidents/INC-1/postmortem");

    // Changes requested: the author hears it, with what to change.
    app.post_form(
        "/incidents/INC-1/postmortem/review",
        Some(&reviewer),
        &[
            ("decision", "request_changes"),
            ("comment", "Name the pool size"),
        ],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(badge(&app, &author).await.as_deref(), Some("1"));
    let page = app.get("/inbox", Some(&author)).await;
    page.assert_status(StatusCode::OK);
    assert!(
        page.body
            .contains("requested changes to your post-mortem: “Name the pool size”"),
        "{}",
        page.body
    );

    // Asked again, then approved: one more for each.
    app.post_form(
        "/incidents/INC-1/postmortem/reviewers",
        Some(&author),
        &[("reviewer", &reviewer.id)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    app.post_form(
        "/incidents/INC-1/postmortem/review",
        Some(&reviewer),
        &[("decision", "approve"), ("comment", "")],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);
    assert_eq!(badge(&app, &reviewer).await.as_deref(), Some("2"));
    let author_token_read = app.token(&author, Scope::Read).await;
    let mine = texts(&inbox_api(&app, &author_token_read).await);
    assert_eq!(
        mine,
        [
            "approved approved your post-mortem",
            "changes_requested requested changes to your post-mortem: “Name the pool size”"
        ]
    );
}

#[tokio::test]
async fn opening_a_message_reads_it_and_goes_where_it_points() {
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let lead = app.user(Role::Responder).await;
    let sam = app.user(Role::Responder).await;
    let viewer = app.user(Role::Viewer).await;
    let lead_token = app.token(&lead, Scope::Write).await;
    app.declare(
        &lead_token,
        json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "unknown"}),
    )
    .await;
    // An item given to Sam, one the lead keeps; a mention of Sam and the viewer on the
    // timeline, and an e-mail address that mentions nobody.
    let item = app
        .api(
            Method::POST,
            "/api/v1/incidents/INC-1/action-items",
            Some(&lead_token),
            Some(json!({"title": "Raise the pool size", "owner": sam.email})),
        )
        .await;
    item.assert_status(StatusCode::CREATED);
    let item_id = item.json()["id"].as_str().expect("id").to_owned();
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/action-items",
        Some(&lead_token),
        Some(json!({"title": "Write the runbook", "owner": lead.email})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    let sam_handle = sam.email.split('@').next().expect("handle");
    let viewer_handle = viewer.email.split('@').next().expect("handle");
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/timeline",
        Some(&lead_token),
        Some(json!({"body": format!("@{sam_handle} and @{viewer_handle}: pool graphs attached; mail {}", lead.email)})),
    )
    .await
    .assert_status(StatusCode::CREATED);

    let sam_token = app.token(&sam, Scope::Read).await;
    let sams = inbox_api(&app, &sam_token).await;
    assert_eq!(
        texts(&sams),
        [
            format!(
                "mentioned mentioned you on the timeline: @{sam_handle} and @{viewer_handle}: pool graphs attached; mail {}",
                lead.email
            ),
            "item_assigned gave you the action item “Raise the pool size”".to_owned(),
        ]
    );
    assert_eq!(badge(&app, &viewer).await.as_deref(), Some("1"));
    let lead_read = app.token(&lead, Scope::Read).await;
    assert_eq!(
        inbox_api(&app, &lead_read).await["unread"],
        0,
        "nothing about oneself"
    );

    // Opening the item message marks it read and lands on the item.
    let item_message = sams["items"][1]["id"].as_str().expect("id").to_owned();
    let opened = app
        .post_form(&format!("/inbox/{item_message}/open"), Some(&sam), &[])
        .await;
    assert_eq!(opened.status, StatusCode::SEE_OTHER);
    assert_eq!(
        opened.headers.get("location").and_then(|v| v.to_str().ok()),
        Some(format!("/incidents/INC-1#item-{item_id}").as_str())
    );
    assert_eq!(badge(&app, &sam).await.as_deref(), Some("1"));
    // Someone else's message is not theirs to open.
    let foreign = app
        .post_form(&format!("/inbox/{item_message}/open"), Some(&viewer), &[])
        .await;
    foreign.assert_status(StatusCode::NOT_FOUND);
    // Mark all read: the badge goes; the messages stay, read.
    let all = app.post_form("/inbox/read-all", Some(&sam), &[]).await;
    assert_eq!(all.status, StatusCode::SEE_OTHER);
    assert_eq!(badge(&app, &sam).await, None);
    let after = inbox_api(&app, &sam_token).await;
    assert_eq!(after["unread"], 0);
    assert_eq!(after["items"].as_array().map(Vec::len), Some(2));
    let unread_only = app
        .api(
            Method::GET,
            "/api/v1/inbox?unread=true",
            Some(&sam_token),
            None,
        )
        .await;
    assert_eq!(unread_only.json()["items"], json!([]));
    app.api(
        Method::GET,
        "/api/v1/inbox?unread=maybe",
        Some(&sam_token),
        None,
    )
    .await
    .assert_status(StatusCode::UNPROCESSABLE_ENTITY);
    // Signed out, the inbox is not there.
    let anonymous = app.get("/inbox", None).await;
    assert_eq!(anonymous.status, StatusCode::SEE_OTHER);
}

/// A small SMTP server on loopback that accepts every mail and keeps what it received.
struct FakeSmtp {
    port: u16,
    mails: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeSmtp {
    async fn start() -> Self {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let mails = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = std::sync::Arc::clone(&mails);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let kept = std::sync::Arc::clone(&kept);
                tokio::spawn(async move {
                    let (read, mut write) = stream.into_split();
                    let mut lines = BufReader::new(read).lines();
                    let _ = write.write_all(b"220 fake ESMTP\r\n").await;
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.split(' ').next().unwrap_or("").to_uppercase();
                        let answer: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 fake\r\n",
                            "DATA" => {
                                let _ = write.write_all(b"354 go on\r\n").await;
                                let mut mail = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    mail.push_str(&l);
                                    mail.push('\n');
                                }
                                kept.lock().expect("mails").push(mail);
                                b"250 queued\r\n"
                            }
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                break;
                            }
                            _ => b"250 ok\r\n",
                        };
                        if write.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        Self { port, mails }
    }

    fn mails(&self) -> Vec<String> {
        self.mails.lock().expect("mails").clone()
    }
}

#[tokio::test]
async fn inbox_messages_are_mailed_once_and_wait_while_the_mail_server_is_down() {
    use hindsight::inbox::mail::{Mailer, Round, deliver_due};
    let app = TestApp::spawn().await;
    app.service("checkout", "Storefront").await;
    let author = app.user(Role::Responder).await;
    let reviewer = app.user(Role::Responder).await;
    let token = app.token(&author, Scope::Write).await;
    app.declare(
        &token,
        json!({"title": "Checkout down", "severity": "sev2", "service": "checkout", "category": "unknown"}),
    )
    .await;
    app.api(
        Method::POST,
        "/api/v1/incidents/INC-1/postmortem",
        Some(&token),
        Some(json!({})),
    )
    .await
    .assert_status(StatusCode::CREATED);
    app.post_form(
        "/incidents/INC-1/postmortem/reviewers",
        Some(&author),
        &[("reviewer", &reviewer.email)],
    )
    .await
    .assert_status(StatusCode::SEE_OTHER);

    // The mail server is down: nothing is lost, the message waits.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let down = Mailer::new(
        &format!("smtp://127.0.0.1:{closed}"),
        "Hindsight <hindsight@example.com>",
        "http://hindsight.test",
    )
    .expect("mailer");
    assert!(deliver_due(&app.db, &down).await.is_err());

    let smtp = FakeSmtp::start().await;
    let mailer = Mailer::new(
        &format!("smtp://127.0.0.1:{}", smtp.port),
        "Hindsight <hindsight@example.com>",
        "http://hindsight.test/",
    )
    .expect("mailer");
    assert_eq!(
        deliver_due(&app.db, &mailer).await.expect("round"),
        Round {
            sent: 1,
            skipped: 0
        }
    );
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert!(
        mail.contains(&format!("To: \"{}\" <{}>", reviewer.name, reviewer.email)),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "Subject: [Hindsight] INC-1: {} asked you to review the post-mortem",
            author.name
        )),
        "{mail}"
    );
    assert!(
        mail.contains("http://hindsight.test/incidents/INC-1/postmortem"),
        "{mail}"
    );
    // Sent once: the next round has nothing to do.
    assert_eq!(
        deliver_due(&app.db, &mailer).await.expect("round"),
        Round::default()
    );
    assert_eq!(smtp.mails().len(), 1);
}
