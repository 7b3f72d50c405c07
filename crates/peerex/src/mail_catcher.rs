//! The demo's mail catcher: an SMTP server on loopback that keeps every mail the platform sends, and
//! a page listing them, so a person sees the mails a release or an app removal causes without a real
//! mail server.
//!
//! It speaks only the commands lettre sends to a plain-text server (EHLO, MAIL, RCPT, DATA, QUIT):
//! a few dozen lines, where the maintained embeddable SMTP server (`mailin-embedded`) would bring its
//! own TLS stack (aws-lc, built from C) into every build for a demo that never uses TLS.

use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use std::sync::{Arc, Mutex};

/// One mail as received.
#[derive(Clone, Debug)]
pub struct Caught {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

type Inbox = Arc<Mutex<Vec<Caught>>>;

/// Bounds on what a client (the demo's own platform, or anything else on this machine) makes it
/// hold: a line, a mail, the mails kept (the oldest go first), and a silent connection.
const MAX_LINE: u64 = 64 * 1024;
const MAX_MAIL: usize = 10 * 1024 * 1024;
const KEPT: usize = 500;
const IDLE: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads one line of at most [`MAX_LINE`] bytes within [`IDLE`]; `Ok(0)` at the end of the stream.
async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
    line: &mut String,
) -> std::io::Result<usize> {
    use tokio::io::AsyncReadExt;
    let mut limited = r.take(MAX_LINE);
    match tokio::time::timeout(IDLE, tokio::io::AsyncBufReadExt::read_line(&mut limited, line))
        .await
    {
        Ok(read) => read,
        Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "idle")),
    }
}

/// Answers one SMTP client: the few commands a mail client sends (RFC 5321's minimum), keeping each
/// mail's envelope and text. No TLS, no authentication: it listens on loopback only.
async fn converse(stream: tokio::net::TcpStream, inbox: Inbox) -> std::io::Result<()> {
    use tokio::io::{AsyncWriteExt, BufReader};
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    write.write_all(b"220 peerex-demo-mail ESMTP\r\n").await?;
    let mut mail = Caught { from: String::new(), to: Vec::new(), data: String::new() };
    let mut line = String::new();
    loop {
        line.clear();
        if read_line(&mut lines, &mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command.split([' ', ':']).next().unwrap_or_default().to_ascii_uppercase();
        let argument = |prefix: &str| {
            command[prefix.len().min(command.len())..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or_default()
                .to_owned()
        };
        let answer: &[u8] = match verb.as_str() {
            "EHLO" => b"250-peerex-demo-mail\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n",
            "HELO" | "NOOP" => b"250 OK\r\n",
            "RSET" => {
                mail = Caught { from: String::new(), to: Vec::new(), data: String::new() };
                b"250 OK\r\n"
            }
            "MAIL" => {
                mail.from = argument("MAIL FROM:");
                b"250 OK\r\n"
            }
            "RCPT" => {
                mail.to.push(argument("RCPT TO:"));
                b"250 OK\r\n"
            }
            "DATA" => {
                write.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                loop {
                    line.clear();
                    if read_line(&mut lines, &mut line).await? == 0 {
                        return Ok(());
                    }
                    if mail.data.len() + line.len() > MAX_MAIL {
                        write.write_all(b"552 too big\r\n").await?;
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    // A leading dot is doubled by the client (RFC 5321 4.5.2).
                    mail.data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                let done = std::mem::replace(
                    &mut mail,
                    Caught { from: String::new(), to: Vec::new(), data: String::new() },
                );
                let mut kept = inbox.lock().unwrap_or_else(|e| e.into_inner());
                if kept.len() >= KEPT {
                    kept.remove(0);
                }
                kept.push(done);
                b"250 OK caught\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"502 not implemented\r\n",
        };
        write.write_all(answer).await?;
    }
}

/// The catcher's SMTP port and the address of its page.
pub struct MailCatcher {
    pub smtp_port: u16,
    pub url: String,
}

/// Starts the SMTP server and the page, both on loopback.
pub async fn start() -> anyhow::Result<MailCatcher> {
    let inbox: Inbox = Arc::default();
    let smtp = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let smtp_port = smtp.local_addr()?.port();
    let caught = inbox.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = smtp.accept().await {
            let inbox = caught.clone();
            tokio::spawn(async move {
                if let Err(e) = converse(stream, inbox).await {
                    tracing::debug!(error = %e, "mail catcher: connection ended");
                }
            });
        }
    });
    let page = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", page.local_addr()?);
    let router = Router::new().route("/", get(list)).route("/{n}", get(show)).with_state(inbox);
    tokio::spawn(async move {
        let _ = axum::serve(page, router).await;
    });
    Ok(MailCatcher { smtp_port, url })
}

fn subject(data: &str) -> &str {
    data.lines().find_map(|l| l.strip_prefix("Subject: ")).unwrap_or("(no subject)")
}

async fn list(State(inbox): State<Inbox>) -> Html<String> {
    let inbox = inbox.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5><title>Mail caught by peerex demo</title>\
         <h1>Mail caught</h1><p>Every mail the demo platform sent, newest first (refreshes every 5 seconds).</p><ol reversed>",
    );
    if inbox.is_empty() {
        html.push_str("<p>None yet: start a release of a customer's active numbers, or remove the app in Zoom.</p>");
    }
    for (n, m) in inbox.iter().enumerate().rev() {
        html.push_str(&format!(
            "<li><a href=\"/{n}\">{}</a> to {}</li>",
            domain::mail::escape(subject(&m.data)),
            domain::mail::escape(&m.to.join(", "))
        ));
    }
    html.push_str("</ol>");
    Html(html)
}

async fn show(State(inbox): State<Inbox>, Path(n): Path<usize>) -> Html<String> {
    let inbox = inbox.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let Some(m) = inbox.get(n) else {
        return Html("<!doctype html><p>No such mail. <a href=\"/\">All mail</a></p>".into());
    };
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>{s}</title><p><a href=\"/\">All mail</a></p><h1>{s}</h1>\
         <p>From {from} to {to}</p><pre style=\"white-space:pre-wrap\">{data}</pre>",
        s = domain::mail::escape(subject(&m.data)),
        from = domain::mail::escape(&m.from),
        to = domain::mail::escape(&m.to.join(", ")),
        data = domain::mail::escape(&m.data),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_mail_sent_through_smtp_is_listed_and_shown() {
        let catcher = start().await.unwrap();
        let config = crate::mail_config::MailConfig {
            host: "127.0.0.1".into(),
            port: catcher.smtp_port,
            tls: "none".into(),
            sender: "Demo Carrier <numbers@carrier.example>".into(),
            ..crate::mail_config::MailConfig::default()
        };
        let mailer = config.setup("Demo Carrier").unwrap().unwrap();
        mailer.send_sample("admin@acme.example").await.unwrap();
        let list = reqwest::get(&catcher.url).await.unwrap().text().await.unwrap();
        assert!(list.contains("Demo Carrier: 1 new number added to your Zoom account"), "{list}");
        assert!(list.contains("admin@acme.example"), "{list}");
        let one = reqwest::get(format!("{}/0", catcher.url)).await.unwrap().text().await.unwrap();
        assert!(one.contains("+15550100000") && one.contains("text/html"), "{one}");
    }
}
