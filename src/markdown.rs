//! Markdown → sanitized HTML. The only place user Markdown becomes HTML: pulldown-cmark renders
//! (raw HTML and all), then ammonia's allow-list removes scripts, event handlers, styles and
//! `javascript:`/`data:` URLs, so the output can be embedded in a page as it is.

use std::sync::LazyLock;

use pulldown_cmark::{Options, Parser, html};

static SANITIZER: LazyLock<ammonia::Builder<'static>> = LazyLock::new(|| {
    let mut builder = ammonia::Builder::default();
    builder
        .link_rel(Some("noopener noreferrer nofollow"))
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .add_tags(["input"])
        .add_tag_attributes("input", ["type", "checked", "disabled"])
        .add_tag_attributes("code", ["class"])
        .add_tag_attributes("td", ["align"])
        .add_tag_attributes("th", ["align"]);
    builder
});

/// Renders Markdown (CommonMark plus tables, strikethrough and task lists) to safe HTML.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES;
    let parser = Parser::new_ext(markdown, options);
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    SANITIZER.clean(&unsafe_html).to_string()
}

/// Escapes Markdown syntax, so untrusted text (alert labels, titles quoted in generated
/// entries) shows as text.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if "\\`*_{}[]()#+-.!|<>~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    /// Markup that must never survive into a page, whatever the payload.
    fn assert_inert(html: &str) {
        let lower = html.to_lowercase();
        for needle in [
            "<script",
            "javascript:",
            "onerror",
            "onload",
            "onclick",
            "onmouseover",
            "<iframe",
            "<svg",
            "<math",
            "<style",
            "<object",
            "<embed",
            "data:text",
            "vbscript:",
            "<form",
            "srcdoc",
            "formaction",
        ] {
            assert!(!lower.contains(needle), "{needle} survived in {html}");
        }
    }

    #[test]
    fn renders_common_markdown() {
        let html =
            render("# Impact\n\n**Checkout** failed for *12%* of users.\n\n- one\n- two\n\n`code`");
        assert!(html.contains("<h1>Impact</h1>"));
        assert!(html.contains("<strong>Checkout</strong>"));
        assert!(html.contains("<li>one</li>"));
        assert!(html.contains("<code>code</code>"));
    }

    #[test]
    fn links_keep_safe_urls_and_gain_rel() {
        let html = render("[runbook](https://wiki.example.com/runbook)");
        assert!(html.contains("href=\"https://wiki.example.com/runbook\""));
        assert!(html.contains("rel=\"noopener noreferrer nofollow\""));
    }

    #[test]
    fn xss_payloads_come_out_inert() {
        let payloads = [
            "<script>alert(1)</script>",
            "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
            "<img src=x onerror=alert(1)>",
            "<IMG SRC=x OnErRoR=alert(1)>",
            "[click](javascript:alert(1))",
            "[click](JaVaScRiPt:alert(1))",
            "[click](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
            "[click](&#x6A;avascript:alert(1))",
            "[click](java\tscript:alert(1))",
            "<a href=\"javascript&colon;alert(1)\">x</a>",
            "<a href=\" javascript:alert(1)\">x</a>",
            "![x](javascript:alert(1))",
            "<svg onload=alert(1)><circle/></svg>",
            "<svg><script>alert(1)</script></svg>",
            "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
            "<div style=\"background:url(javascript:alert(1))\">x</div>",
            "<a href=\"data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\">x</a>",
            "<object data=\"x.swf\"></object><embed src=\"x.swf\">",
            "<form action=\"https://evil.example\"><button formaction=\"javascript:alert(1)\">go</button></form>",
            "<details open ontoggle=alert(1)>",
            "<body onload=alert(1)>",
            "<a href=\"vbscript:msgbox(1)\">x</a>",
            "<<script>script>alert(1)<</script>/script>",
            "<style>body{display:none}</style>",
        ];
        for payload in payloads {
            assert_inert(&render(payload));
        }
    }

    #[test]
    fn escaped_text_stays_text() {
        let html = render("a < b && c > d");
        assert!(html.contains("a &lt; b &amp;&amp; c &gt; d"), "{html}");
    }
}
