//! Splitting a config line into words as HAProxy does: blanks separate words, `#` starts a
//! comment, double and single quotes group, and a backslash escapes the next character.

/// The words of one line, with quotes removed and escapes resolved; an error for an
/// unterminated quote.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            // Single quotes are literal; double quotes still honour escapes.
            (Some('\''), c) => word.push(c),
            (_, '\\') => {
                if let Some(next) = chars.next() {
                    word.push(next);
                }
                in_word = true;
            }
            (Some(_), c) => word.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '#') => break,
            (None, ' ' | '\t') => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("unterminated quote ({q})"));
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_quotes_escapes_and_comments() {
        let w = |s| split_words(s).unwrap();
        assert_eq!(
            w("  server a 1.2.3.4:80\tcheck"),
            ["server", "a", "1.2.3.4:80", "check"]
        );
        assert_eq!(
            w("option httpchk GET /x # comment"),
            ["option", "httpchk", "GET", "/x"]
        );
        assert_eq!(
            w(r#"errorfile "a b" 'c\d' e\ f \#g"#),
            ["errorfile", "a b", r"c\d", "e f", "#g"]
        );
        assert_eq!(w(r#"x """#), ["x", ""]);
        assert!(w("# only a comment").is_empty());
        assert!(split_words("x \"open").is_err());
    }
}
