//! Markdown → sanitized HTML. The only place user Markdown becomes HTML: pulldown-cmark renders
//! (raw HTML and all), then ammonia's allow-list removes scripts, event handlers, styles and
//! `javascript:`/`data:` URLs, so the output can be embedded in a page as it is.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd, html};

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

fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_FOOTNOTES
}

/// Renders Markdown (CommonMark plus tables, strikethrough and task lists) to safe HTML.
///
/// The policy, the same for every field: raw HTML is shown as the text that was typed (an
/// unclosed `<iframe>`, `<textarea>`, `<xmp>`, `<noscript>`, `<title>`, `<plaintext>` or
/// `<details>` would otherwise hide or swallow everything after it), and images are shown only
/// from Hindsight itself (a path like `/static/…`); any other image becomes a link to it with its
/// alt text, so reading a post-mortem never makes the browser fetch from elsewhere. The
/// sanitizer still runs after rendering as a second line of defence.
///
/// Rendering is a pure function of the text, so results are remembered by their source
/// ([`RENDERED`]): a page showing a hundred timeline entries renders only those it has not
/// seen before, and a write never has to forget anything.
pub fn render(markdown: &str) -> String {
    if markdown.len() > MEMO_MAX_SOURCE {
        return render_uncached(markdown);
    }
    if let Some(html) = RENDERED.get(markdown) {
        return html.to_string();
    }
    let html = render_uncached(markdown);
    RENDERED.keep(markdown, &html);
    html
}

/// Sources longer than this are rendered each time (a whole post-mortem document is rare
/// and would crowd out hundreds of timeline entries).
const MEMO_MAX_SOURCE: usize = 16 * 1024;
/// Bytes of source plus HTML one generation of the memo holds before it becomes the old one;
/// the memo holds at most twice this.
const MEMO_GENERATION_BYTES: usize = 8 * 1024 * 1024;

/// Rendered HTML by Markdown source, in two generations: a lookup that finds an entry in the
/// old generation moves it to the young one, and when the young one is full the old one is
/// dropped, so what pages keep showing stays and the rest ages out within a bounded size.
static RENDERED: LazyLock<Memo> = LazyLock::new(Memo::default);

#[derive(Default)]
struct Memo {
    generations: std::sync::Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: HashMap<Box<str>, Arc<str>>,
    young_bytes: usize,
    old: HashMap<Box<str>, Arc<str>>,
}

impl Memo {
    fn get(&self, source: &str) -> Option<Arc<str>> {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(html) = g.young.get(source) {
            return Some(Arc::clone(html));
        }
        let (source, html) = g.old.remove_entry(source)?;
        g.insert(source, Arc::clone(&html));
        Some(html)
    }

    fn keep(&self, source: &str, html: &str) {
        let mut g = self.generations.lock().unwrap_or_else(|p| p.into_inner());
        g.insert(source.into(), html.into());
    }
}

impl Generations {
    fn insert(&mut self, source: Box<str>, html: Arc<str>) {
        let bytes = source.len() + html.len();
        if self.young.insert(source, html).is_none() {
            self.young_bytes += bytes;
        }
        if self.young_bytes > MEMO_GENERATION_BYTES {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
    }
}

fn render_uncached(markdown: &str) -> String {
    // Whether each open image was turned into a link (images do not nest, but their alt text
    // may hold other inline events).
    let markdown = html_as_text(markdown);
    let mut images: Vec<bool> = Vec::new();
    let parser = Parser::new_ext(&markdown, options()).map(|event| match event {
        Event::Html(raw) | Event::InlineHtml(raw) => Event::Text(raw),
        Event::Start(Tag::Image {
            link_type,
            dest_url,
            title,
            id,
        }) => {
            let own = own_image(&dest_url);
            images.push(!own);
            if own {
                Event::Start(Tag::Image {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            } else {
                Event::Start(Tag::Link {
                    link_type,
                    dest_url,
                    title,
                    id,
                })
            }
        }
        Event::End(TagEnd::Image) => {
            if images.pop().unwrap_or(false) {
                Event::End(TagEnd::Link)
            } else {
                Event::End(TagEnd::Image)
            }
        }
        other => other,
    });
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, parser);
    SANITIZER.clean(&unsafe_html).to_string()
}

/// The source with the `<` that opens each piece of raw HTML written as `&lt;`, so it parses as
/// the text it was. Escaping the parsed HTML events alone is not enough: an HTML block that
/// starts with `<textarea>`, `<script>`, `<style>` or `<pre>` (or `<!--`) runs to its closing
/// tag, so an unclosed one would turn the rest of the document into one literal block. Escaping
/// in the source and parsing again lets what follows be Markdown again; a new pass is needed
/// only when such a block hid more HTML, so the passes are few and bounded.
fn html_as_text(markdown: &str) -> std::borrow::Cow<'_, str> {
    let mut source = std::borrow::Cow::Borrowed(markdown);
    for _ in 0..16 {
        let mut opens: Vec<usize> = Vec::new();
        for (event, range) in Parser::new_ext(&source, options()).into_offset_iter() {
            if let Event::Html(_) | Event::InlineHtml(_) = event {
                let text = source.get(range.clone()).unwrap_or_default();
                let lead = text.len() - text.trim_start().len();
                if text.trim_start().starts_with('<') {
                    opens.push(range.start + lead);
                }
            }
        }
        if opens.is_empty() {
            break;
        }
        opens.dedup();
        let mut out = String::with_capacity(source.len() + opens.len() * 3);
        let mut at = 0;
        for open in opens {
            out.push_str(source.get(at..open).unwrap_or_default());
            out.push_str("&lt;");
            at = open + 1;
        }
        out.push_str(source.get(at..).unwrap_or_default());
        source = std::borrow::Cow::Owned(out);
    }
    source
}

/// An image served by Hindsight itself: a path on this site (`/static/x.png`), not another
/// site (`https://…`, `//host/…`) nor a relative path another page could resolve elsewhere.
fn own_image(url: &str) -> bool {
    let url = url.trim();
    url.starts_with('/') && !url.starts_with("//") && !url.starts_with("/\\")
}

/// Escapes Markdown syntax, so untrusted text shows as text: the one function every piece of
/// text Hindsight did not write itself goes through on its way into Markdown (alert names,
/// labels and messages, service and category names, people's names, titles quoted in
/// generated entries). Every character that can open a link, image, HTML, emphasis, code,
/// heading, list, quote or table is backslash-escaped, so the result is plain text in any
/// block; a line break stays a line break. For text shown as code, see [`code_span`].
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

/// Untrusted text as one inline code span that nothing in it can end early: line breaks
/// become spaces (a blank line would end the paragraph, and the span, and let the rest be
/// read as Markdown) and the fence is one backtick longer than the longest run inside, so a
/// backtick in the text cannot close it. Backslash escapes show literally in code, which is
/// why code goes through this and not [`escape`].
pub fn code_span(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c })
        .collect();
    let (mut longest, mut run) = (0, 0);
    for c in flat.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    // One space inside each end is stripped by the renderer; it keeps a leading or trailing
    // backtick of the text from joining the fence.
    format!("{fence} {flat} {fence}")
}

/// Links a reader can follow safely: web, mail and relative ones.
fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    let scheme_end = lower.find(':');
    let path_start = lower.find(['/', '?', '#']);
    match scheme_end {
        None => true,
        Some(colon) if path_start.is_some_and(|p| p < colon) => true,
        Some(_) => {
            lower.starts_with("http://")
                || lower.starts_with("https://")
                || lower.starts_with("mailto:")
        }
    }
}

/// Markdown made safe to hand to another renderer (exports): raw HTML is escaped so it shows as
/// text, and links or images with a script or data URL become literal text. Everything else is
/// kept exactly as written.
pub fn neutralize(markdown: &str) -> String {
    let mut edits: Vec<(std::ops::Range<usize>, String)> = Vec::new();
    for (event, range) in Parser::new_ext(markdown, options()).into_offset_iter() {
        let source = markdown.get(range.clone()).unwrap_or_default();
        match event {
            Event::Html(_) | Event::InlineHtml(_) => {
                edits.push((range, source.replace('<', "&lt;")));
            }
            Event::Start(Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. })
                if !safe_url(&dest_url) =>
            {
                edits.push((range, escape(source)));
            }
            _ => {}
        }
    }
    // Outer edits (a whole link) come first and cover anything nested inside them.
    edits.sort_by_key(|(range, _)| (range.start, std::cmp::Reverse(range.end)));
    let mut out = String::with_capacity(markdown.len() + 16);
    let mut at = 0;
    for (range, replacement) in edits {
        if range.start < at {
            continue;
        }
        out.push_str(markdown.get(at..range.start).unwrap_or_default());
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(markdown.get(at..).unwrap_or_default());
    out
}

/// The words of a Markdown text without its syntax (`**`, `\\(`, links, code fences), blocks
/// separated by spaces: for snippets and previews that show text, not formatting.
pub fn plain_text(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for event in Parser::new_ext(markdown, options()) {
        match event {
            // Raw HTML stays as typed: callers show this as text (escaped), never as markup.
            Event::Text(text) | Event::Code(text) | Event::Html(text) | Event::InlineHtml(text) => {
                out.push_str(&text);
            }
            Event::End(
                TagEnd::Emphasis | TagEnd::Strong | TagEnd::Strikethrough | TagEnd::Link,
            ) => {}
            // The end of a block (paragraph, item, heading, …), a line break or a rule.
            Event::SoftBreak | Event::HardBreak | Event::End(_) | Event::Rule
                if !out.ends_with(' ') && !out.is_empty() =>
            {
                out.push(' ');
            }
            _ => {}
        }
    }
    out.trim_end().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{code_span, escape, neutralize, plain_text, render};

    #[test]
    fn remembered_html_is_what_a_fresh_render_gives() {
        let sources = [
            "**bold** and <script>alert(1)</script>",
            "- [x] done\n- [ ] open",
            "![x](https://evil.example/p.png) and [ok](/incidents/INC-1)",
            "",
        ];
        for source in sources {
            let first = render(source);
            assert_eq!(render(source), first, "second render of {source:?}");
            assert_eq!(super::render_uncached(source), first, "{source:?}");
        }
        let long = "word ".repeat(super::MEMO_MAX_SOURCE / 4);
        assert_eq!(render(&long), super::render_uncached(&long));
    }

    #[test]
    fn the_memo_holds_at_most_two_generations() {
        let mut g = super::Generations::default();
        let html: std::sync::Arc<str> = "x".repeat(1000).into();
        for i in 0..(3 * super::MEMO_GENERATION_BYTES / 1000) {
            g.insert(format!("entry {i}").into(), std::sync::Arc::clone(&html));
            assert!(g.young_bytes <= super::MEMO_GENERATION_BYTES);
        }
        let held: usize = g
            .young
            .iter()
            .chain(g.old.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        assert!(held <= 2 * super::MEMO_GENERATION_BYTES + 2048, "{held}");
        // The newest entry is still there; the first ones aged out.
        let last = format!("entry {}", 3 * super::MEMO_GENERATION_BYTES / 1000 - 1);
        assert!(g.young.contains_key(last.as_str()) || g.old.contains_key(last.as_str()));
        assert!(!g.young.contains_key("entry 0") && !g.old.contains_key("entry 0"));
    }

    #[test]
    fn code_spans_hold_backticks_and_blank_lines_without_breaking_out() {
        let key = "{}:{alertname=\"x\"}`\n\n[click here](https://evil.example) ``` `";
        let html = render(&format!("Opened for the alert group {}.", code_span(key)));
        assert!(!html.contains("<a "), "{html}");
        assert!(
            html.contains("[click here](https://evil.example)"),
            "{html}"
        );
        assert_eq!(html.matches("<code>").count(), 1, "{html}");
        assert_eq!(
            render(&code_span("plain")).trim(),
            "<p><code>plain</code></p>"
        );
    }

    #[test]
    fn escaped_text_cannot_plant_links_html_or_blocks() {
        for hostile in [
            "[fix](https://evil.example)",
            "<https://evil.example>",
            "![x](https://evil.example/x.png)",
            "<b>bold</b>",
            "a\n\n# heading\n\n- item\n\n> quote\n\n| a | b |\n|---|---|",
            "[ref]\n\n[ref]: https://evil.example",
        ] {
            let html = render(&format!("Declared by {}.", escape(hostile)));
            for needle in ["<a ", "<img", "<b>", "<h1", "<li", "<blockquote", "<table"] {
                assert!(!html.contains(needle), "{needle} in {html}");
            }
        }
    }

    #[test]
    fn plain_text_keeps_the_words_and_drops_the_syntax() {
        assert_eq!(
            plain_text(
                "Action item **Add a DB pool saturation alert \\(in\\-use\\)**: owner now Ana"
            ),
            "Action item Add a DB pool saturation alert (in-use): owner now Ana"
        );
        assert_eq!(
            plain_text(
                "# Cause\n\nSee [the runbook](https://x.example/r) and `pool_size=2`.\n\n- one\n- two"
            ),
            "Cause See the runbook and pool_size=2. one two"
        );
        assert_eq!(
            plain_text("Saw <b>502</b> errors"),
            "Saw <b>502</b> errors",
            "raw HTML is kept as the words typed (the caller escapes it)"
        );
    }

    #[test]
    fn neutralized_markdown_keeps_text_and_safe_links_but_not_html_or_script_links() {
        let md = "Hi <b onclick=x>there</b> [ok](https://example.com) [bad](javascript:alert(1))\n\n<script>alert(1)</script>\n\n`<kept in code>`";
        let out = neutralize(md);
        assert!(out.contains("[ok](https://example.com)"), "{out}");
        assert!(out.contains("`<kept in code>`"), "{out}");
        assert!(!out.contains("<script"), "{out}");
        assert!(!out.contains("<b "), "{out}");
        assert!(!out.contains("](javascript:"), "{out}");
        let html = render(&out);
        assert!(
            !html.contains("<script") && !html.contains("<b onclick"),
            "{html}"
        );
        assert!(!html.contains("href=\"javascript"), "{html}");
        assert_eq!(neutralize("plain *text*"), "plain *text*");
    }

    /// Markup that must never survive into a page, whatever the payload. Only the markup is
    /// searched: a payload shown as text (`&lt;img … onerror=…&gt;`) is what the policy wants.
    fn assert_inert(html: &str) {
        let lower: String = html
            .to_lowercase()
            .split('<')
            .skip(1)
            .map(|tag| format!("<{}>", tag.split('>').next().unwrap_or_default()))
            .collect();
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

    /// Raw HTML that, left as markup, hides or swallows what follows it: the text after it must
    /// stay in the page as text, in its own paragraph.
    #[test]
    fn no_input_can_swallow_or_hide_the_rest_of_the_document() {
        let payloads = [
            "<iframe>",
            "<iframe src=\"/\">",
            "<textarea>",
            "<xmp>",
            "<noscript>",
            "<title>",
            "<plaintext>",
            "<details>",
            "<details><summary>Show</summary>",
            "<noembed>",
            "<noframes>",
            "<style>",
            "<script>",
            "<template>",
            "<select><option>",
            "<!--",
            "<a href=\"https://x.example\">",
            "<div hidden>",
            "<span style=\"display:none\">",
            "<table><tr><td>",
            "<img src=\"https://tracker.example/pixel.gif\">",
            "text then <textarea> inline",
            "text then <iframe> inline",
        ];
        for payload in payloads {
            let html = render(&format!(
                "{payload}\n\nWhat followed the payload stays visible."
            ));
            assert!(
                html.contains("<p>What followed the payload stays visible.</p>"),
                "{payload:?} swallowed the rest: {html}"
            );
            let lower = html.to_lowercase();
            for tag in [
                "<iframe",
                "<textarea",
                "<xmp",
                "<noscript",
                "<title",
                "<plaintext",
                "<details",
                "<noembed",
                "<noframes",
                "<style",
                "<script",
                "<template",
                "<select",
                "<!--",
                "<div",
                "<span",
                "<table",
                "<img",
                "<a ",
            ] {
                assert!(!lower.contains(tag), "{payload:?} left {tag} in {html}");
            }
            // What was typed is shown, as text.
            let typed = payload.split('<').nth(1).unwrap_or_default();
            let shown = typed.split([' ', '>']).next().unwrap_or_default();
            assert!(
                html.contains(&format!("&lt;{shown}")),
                "{payload:?} is shown: {html}"
            );
        }
    }

    #[test]
    fn images_show_only_from_hindsight_itself() {
        let own = render("![chart](/static/favicon.svg)");
        assert!(
            own.contains("<img src=\"/static/favicon.svg\" alt=\"chart\""),
            "{own}"
        );
        for url in [
            "https://tracker.example/pixel.gif",
            "//tracker.example/pixel.gif",
            "http://127.0.0.1:3000/x.png",
            "pixel.gif",
        ] {
            let html = render(&format!("![the chart]({url}) and after"));
            assert!(!html.contains("<img"), "{url}: {html}");
            assert!(html.contains("the chart</a> and after"), "{url}: {html}");
        }
        assert!(!render("<img src=\"/static/favicon.svg\">").contains("<img"));
    }

    #[test]
    fn escaped_text_stays_text() {
        let html = render("a < b && c > d");
        assert!(html.contains("a &lt; b &amp;&amp; c &gt; d"), "{html}");
    }
}
