//! Where the Markdown code is: fenced code blocks and inline code spans, as byte ranges.
//! The blame check skips them (a log line saying "failed to" blames no one); the secret and
//! personal-data checks do not.

/// Byte ranges of fenced code blocks and inline code spans, sorted.
pub(super) fn code_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut fence: Option<(u8, usize, usize)> = None; // (char, length, block start)
    let mut prose_start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let indent = line.len() - line.trim_start_matches(' ').len();
        let body = &line[indent..];
        let run = |c: u8| body.bytes().take_while(|&b| b == c).count();
        match fence {
            None if indent <= 3 => {
                for c in [b'`', b'~'] {
                    let n = run(c);
                    if n >= 3 {
                        inline_code(text, prose_start, offset, &mut spans);
                        fence = Some((c, n, offset));
                        break;
                    }
                }
            }
            Some((c, n, block_start))
                if indent <= 3 && run(c) >= n && body[run(c)..].trim().is_empty() =>
            {
                spans.push((block_start, offset + line.len()));
                fence = None;
                prose_start = offset + line.len();
            }
            _ => {}
        }
        offset += line.len();
    }
    match fence {
        // An unclosed fence runs to the end of the document, as in CommonMark.
        Some((_, _, block_start)) => spans.push((block_start, text.len())),
        None => inline_code(text, prose_start, text.len(), &mut spans),
    }
    spans.sort_unstable();
    spans
}

/// Inline code: a run of N backticks up to the next run of exactly N.
fn inline_code(text: &str, from: usize, to: usize, spans: &mut Vec<(usize, usize)>) {
    let bytes = &text.as_bytes()[from..to];
    let run_at = |i: usize| bytes[i..].iter().take_while(|&&b| b == b'`').count();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let n = run_at(i);
        let mut j = i + n;
        let mut closed = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let m = run_at(j);
                if m == n {
                    closed = Some(j + m);
                    break;
                }
                j += m;
            } else {
                j += 1;
            }
        }
        match closed {
            Some(close) => {
                spans.push((from + i, from + close));
                i = close;
            }
            None => i += n,
        }
    }
}

/// Whether `[start, end)` lies within one of the sorted, disjoint `spans`.
pub(super) fn within(spans: &[(usize, usize)], start: usize, end: usize) -> bool {
    let idx = spans.partition_point(|&(s, _)| s <= start);
    idx > 0 && spans[idx - 1].1 >= end
}
