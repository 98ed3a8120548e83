//! The inbox by e-mail: when `HINDSIGHT_SMTP_URL` is set, every new inbox message is also
//! mailed to its recipient (plain text, with the link), by a background loop that marks what
//! it sent, so a message is mailed once and a mail server that is down only delays it.

use std::time::Duration;

use chrono::Utc;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Email, Tokio1Executor};

use super::db;
use crate::db::Db;
use crate::error::{AppError, AppResult};

/// Messages older than this when first seen are not mailed (mail turned on later must not
/// send the whole history).
const MAX_AGE: chrono::Duration = chrono::Duration::hours(24);
/// Messages sent per round.
const BATCH: i64 = 50;

/// Where and how inbox mail goes.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    base_url: String,
}

impl std::fmt::Debug for Mailer {
    // The transport holds the SMTP credentials: never print it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl Mailer {
    /// A mailer for `smtp_url` (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`) sending as `from` (`Hindsight <hindsight@example.com>`);
    /// links point at `base_url`. The error says what is wrong, never the password.
    pub fn new(smtp_url: &str, from: &str, base_url: &str) -> Result<Self, String> {
        let smtp_url = starttls_spelling(smtp_url);
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&smtp_url)
            .map_err(|e| format!("not an SMTP URL lettre understands ({e})"))?
            .timeout(Some(Duration::from_secs(20)))
            .build();
        let from = from
            .parse::<Mailbox>()
            .map_err(|e| format!("the sender is not an e-mail address ({e})"))?;
        Ok(Self {
            transport,
            from,
            base_url: base_url.trim_end_matches('/').to_owned(),
        })
    }

    /// Sends one message with a plain-text and an HTML part (text first, so a reader that
    /// shows only one part picks the HTML, and one that cannot shows the text) to `to`. The
    /// error says what failed without the credentials.
    pub async fn send_alternative(
        &self,
        to: &[String],
        subject: &str,
        text: String,
        html: String,
    ) -> Result<(), String> {
        use lettre::message::MultiPart;
        let mut builder = Email::builder().from(self.from.clone()).subject(subject);
        for address in to {
            let mailbox: Mailbox = address
                .parse()
                .map_err(|e| format!("the address {address:?} does not parse ({e})"))?;
            builder = builder.to(mailbox);
        }
        let email = builder
            .multipart(MultiPart::alternative_plain_html(text, html))
            .map_err(|e| format!("the mail could not be built ({e})"))?;
        self.transport
            .send(email)
            .await
            .map(|_| ())
            .map_err(|e| format!("the mail server refused or did not answer: {e}"))
    }

    /// Where links in mail point.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The e-mail for one inbox message.
    fn compose(&self, item: &db::Unmailed) -> Result<Email, String> {
        let m = &item.message;
        let who = m.actor_name.as_deref().unwrap_or("Hindsight");
        let subject = format!("[Hindsight] INC-{}: {who} {}", m.incident_number, m.text);
        let subject: String = subject.chars().take(180).collect();
        let body = format!(
            "{who} {}\n\nINC-{} {}\n{}{}\n\n-- \nThis is in your Hindsight inbox: {}/inbox\n",
            m.text,
            m.incident_number,
            m.incident_title,
            self.base_url,
            m.link(),
            self.base_url,
        );
        let to = Mailbox::new(
            Some(item.to_name.clone()),
            item.to_email
                .parse()
                .map_err(|e| format!("the recipient's address does not parse ({e})"))?,
        );
        Email::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body)
            .map_err(|e| format!("the mail could not be built ({e})"))
    }
}

/// `tls=starttls` (the spelling the README and most mail providers use) is what lettre calls
/// `tls=required`: STARTTLS on the plain port, refusing to go on without it.
fn starttls_spelling(url: &str) -> String {
    match url.split_once('?') {
        Some((head, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, v)) if k == "tls" && v.eq_ignore_ascii_case("starttls") => {
                        "tls=required".to_owned()
                    }
                    _ => pair.to_owned(),
                })
                .collect();
            format!("{head}?{}", query.join("&"))
        }
        None => url.to_owned(),
    }
}

/// What one round did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Round {
    pub sent: usize,
    /// Messages that can never be mailed (an address that does not parse): marked done.
    pub skipped: usize,
}

/// Mails the messages due; stops at the first failure of the mail server (the rest wait for
/// the next round, in order).
pub async fn deliver_due(db: &Db, mailer: &Mailer) -> AppResult<Round> {
    let mut round = Round::default();
    let due = db::unmailed(&db.reader, Utc::now() - MAX_AGE, BATCH).await?;
    for item in &due {
        match mailer.compose(item) {
            Ok(email) => {
                mailer.transport.send(email).await.map_err(|e| {
                    AppError::Internal(format!("the mail server refused or did not answer: {e}"))
                })?;
                round.sent += 1;
            }
            Err(reason) => {
                tracing::warn!(message = %item.message.id, %reason, "an inbox message cannot be mailed");
                round.skipped += 1;
            }
        }
        // Marked right after sending (not at the end of the round), so a failure later in the
        // round never sends this one twice.
        let mut tx = db.begin_write().await?;
        db::mark_mailed(&mut tx, &item.message.id, Utc::now()).await?;
        tx.commit_private().await?;
    }
    Ok(round)
}

/// The background loop: a round every few seconds until `stop` turns true.
pub async fn run(db: Db, mailer: Mailer, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut interval = tokio::time::interval(Duration::from_secs(5));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        if let Err(e) = deliver_due(&db, &mailer).await {
            tracing::warn!(error = %e, "mailing inbox messages failed; retrying shortly");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_smtp_url_builds_a_mailer() {
        for url in [
            "smtp://user:pass@mail.example.com:587?tls=starttls",
            "smtp://user:pass@mail.example.com:587?tls=required",
            "smtps://user:pass@mail.example.com:465",
            "smtp://127.0.0.1:25",
        ] {
            Mailer::new(url, "Hindsight <h@example.com>", "https://h.example.com")
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        assert_eq!(
            starttls_spelling("smtp://u:p@h:587?tls=starttls"),
            "smtp://u:p@h:587?tls=required"
        );
        assert!(Mailer::new("smtp://h:587?tls=bogus", "h@example.com", "x").is_err());
    }
}
