//! Shell patterns for the delivery table: `*` (any run of characters), `?` (one character),
//! `[abc]`, `[a-z]`, `[!x]` (one character of a set, or not of it), and `\` to take the next
//! character as it is. A pattern matches the whole text. A bracket that never closes is a
//! plain `[`.

/// Checks a pattern: refuses the empty one and control characters.
pub fn validate(pattern: &str) -> Result<(), String> {
    if pattern.is_empty() {
        return Err("a pattern must not be empty (use --any to match everything)".into());
    }
    if pattern.chars().any(char::is_control) {
        return Err(format!("pattern {pattern:?} holds a control character"));
    }
    if pattern.chars().count() > 200 {
        return Err("a pattern is at most 200 characters".into());
    }
    Ok(())
}

/// True when `pattern` matches all of `text`; with `fold`, ASCII letters match either case.
pub fn matches(pattern: &str, text: &str, fold: bool) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let eq = |a: char, b: char| {
        if fold {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0usize, 0usize);
    // Where to resume after the last `*`: the pattern index after it, and the text index it
    // has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let step = match p.get(pi) {
            Some('*') => {
                star = Some((pi + 1, ti));
                pi += 1;
                continue;
            }
            Some('?') => Some(1),
            Some('[') => match class(&p[pi..], t[ti], fold) {
                Some((hit, len)) => hit.then_some(len),
                None => eq('[', t[ti]).then_some(1),
            },
            Some('\\') if pi + 1 < p.len() => eq(p[pi + 1], t[ti]).then_some(2),
            Some(&c) => eq(c, t[ti]).then_some(1),
            None => None,
        };
        match (step, star) {
            (Some(len), _) => {
                pi += len;
                ti += 1;
            }
            (None, Some((sp, st))) => {
                pi = sp;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            (None, None) => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Matches `c` against the bracket class at the start of `p`: whether it matched and the
/// class's length, or `None` when the bracket never closes.
fn class(p: &[char], c: char, fold: bool) -> Option<(bool, usize)> {
    let mut i = 1;
    let negate = matches!(p.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let start = i;
    let mut hit = false;
    let norm = |x: char| if fold { x.to_ascii_lowercase() } else { x };
    let c = norm(c);
    while i < p.len() {
        if p[i] == ']' && i > start {
            return Some((hit != negate, i + 1));
        }
        let lo = norm(p[i]);
        if p.get(i + 1) == Some(&'-') && p.get(i + 2).is_some_and(|&e| e != ']') {
            let hi = norm(p[i + 2]);
            hit |= lo <= c && c <= hi;
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_like_a_shell() {
        assert!(matches("*", "", false));
        assert!(matches("ACME*", "ACME Osaka", false));
        assert!(!matches("ACME*", "acme Osaka", false));
        assert!(matches("ACME*", "acme Osaka", true));
        assert!(matches("+81*", "+81312345678", false));
        assert!(!matches("+81*", "+8", false));
        assert!(matches("*5678", "+81312345678", false));
        assert!(matches("0?-*", "03-1234", false));
        assert!(matches("[0-3]*", "2abc", false));
        assert!(!matches("[!0-3]*", "2abc", false));
        assert!(matches("a*b*c", "aXXbYYc", false));
        assert!(!matches("a*b*c", "aXXbYY", false));
        assert!(matches(r"\*x", "*x", false));
        assert!(!matches(r"\*x", "ax", false));
        assert!(matches("[abc", "[abc", false));
        assert!(matches("[]]", "]", false));
        assert!(!matches("abc", "abcd", false));
    }

    #[test]
    fn bad_patterns_are_named() {
        assert!(validate("").is_err());
        assert!(validate("a\nb").unwrap_err().contains("control"));
        assert!(validate("ACME*").is_ok());
    }
}
