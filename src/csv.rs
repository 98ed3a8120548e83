//! CSV output shared by every export: quoting, and defusing spreadsheet formulas.

/// Characters that make a spreadsheet read a cell as a formula (`\t` and `\r` are handled as
/// cell separators below, which is what they are to a spreadsheet).
const FORMULA_START: [char; 4] = ['=', '+', '-', '@'];

/// Where a spreadsheet may start a new cell inside our field: a `;`-locale spreadsheet opening
/// this comma-separated file splits unquoted text at `;`, and some importers split at tabs
/// and line breaks too.
const CELL_BREAKS: [char; 5] = [',', ';', '\t', '\n', '\r'];

/// Quotes a CSV field when needed, and defuses spreadsheet formulas: a `'` goes before any
/// `=`, `+`, `-` or `@` that starts the field or starts a cell a spreadsheet could split off
/// at `,`, `;`, a tab or a line break (spaces in between do not help a formula hide).
pub fn csv_field(value: &str) -> String {
    let mut defused = String::with_capacity(value.len() + 2);
    let mut cell_start = true;
    for c in value.chars() {
        if cell_start && FORMULA_START.contains(&c) {
            defused.push('\'');
        }
        defused.push(c);
        if CELL_BREAKS.contains(&c) {
            cell_start = true;
        } else if c != ' ' {
            cell_start = false;
        }
    }
    if defused.contains([',', ';', '"', '\t', '\n', '\r']) {
        format!("\"{}\"", defused.replace('"', "\"\""))
    } else {
        defused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_field("2026-11-17T10:00:00Z"), "2026-11-17T10:00:00Z");
    }

    #[test]
    fn formulas_after_a_separator_are_defused_too() {
        // A `;`-locale spreadsheet would split these into a second cell holding a formula.
        assert_eq!(
            csv_field("checkout;=cmd|' /C calc'!A0"),
            "\"checkout;'=cmd|' /C calc'!A0\""
        );
        assert_eq!(csv_field("a; @SUM(1+1)"), "\"a; '@SUM(1+1)\"");
        assert_eq!(csv_field("a,+1"), "\"a,'+1\"");
        assert_eq!(csv_field("x\t-2+3"), "\"x\t'-2+3\"");
        assert_eq!(csv_field("one\n=2"), "\"one\n'=2\"");
        assert_eq!(csv_field("  =1+1"), "  '=1+1");
        // Inside a word they are just text.
        assert_eq!(csv_field("p99 = 2s, a-b"), "\"p99 = 2s, a-b\"");
    }
}
