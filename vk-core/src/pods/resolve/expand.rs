//! `$(VAR)` expansion, byte-for-byte the kubelet's
//! (`k8s.io/kubernetes/third_party/forked/golang/expansion`):
//!
//! - `$(NAME)` is replaced by the variable's value when `lookup` knows it, and left exactly as
//!   written (`$(NAME)`) when it does not;
//! - `$$` is an escaped `$`;
//! - `$(` without a closing `)` is kept as is and scanning resumes after the `(`;
//! - a `$` followed by anything else, or at the end of the input, is kept;
//! - the name is everything up to the first `)`, so `$(A$(B))` looks up `A$(B` (and, as that is
//!   never defined, stays literal) followed by a literal `)`.
//!
//! One deliberate difference: for a `$` followed by a multi-byte UTF-8 character the Go code
//! re-encodes the character's first byte as a rune (mangling it); here the character is copied
//! unchanged.

/// Expands `input` against `lookup`.
pub fn expand(input: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    // Everything before `checkpoint` has been written to `out`.
    let mut checkpoint = 0;
    let mut cursor = 0;
    while cursor < bytes.len() {
        if bytes[cursor] == b'$' && cursor + 1 < bytes.len() {
            out.push_str(&input[checkpoint..cursor]);
            let rest = &input[cursor + 1..];
            match bytes[cursor + 1] {
                b'$' => {
                    // Escaped operator.
                    out.push('$');
                    cursor += 2;
                }
                b'(' => match rest[1..].find(')') {
                    Some(close) => {
                        let name = &rest[1..1 + close];
                        match lookup(name) {
                            Some(value) => out.push_str(&value),
                            None => {
                                out.push_str("$(");
                                out.push_str(name);
                                out.push(')');
                            }
                        }
                        // `$` + `(` + name + `)`
                        cursor += 3 + close;
                    }
                    None => {
                        // Incomplete reference: keep `$(` and go on scanning after it.
                        out.push_str("$(");
                        cursor += 2;
                    }
                },
                _ => {
                    // A lone operator; the next character is copied with the literal text.
                    out.push('$');
                    cursor += 1;
                }
            }
            checkpoint = cursor;
        } else {
            cursor += 1;
        }
    }
    out.push_str(&input[checkpoint..]);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn vars() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("VAR_A", "A"),
            ("VAR_B", "B"),
            ("VAR_C", "C"),
            ("VAR_REF", "$(VAR_A)"),
            ("VAR_EMPTY", ""),
        ])
    }

    fn run(input: &str) -> String {
        let vars = vars();
        expand(input, |k| vars.get(k).map(|v| v.to_string()))
    }

    /// The kubelet's own table (expand_test.go), case for case.
    #[test]
    fn kubelet_cases() {
        let cases = [
            ("whole string", "$(VAR_A)", "A"),
            ("repeat", "$(VAR_A)-$(VAR_A)", "A-A"),
            ("beginning", "$(VAR_A)-1", "A-1"),
            ("middle", "___$(VAR_B)___", "___B___"),
            ("end", "___$(VAR_C)", "___C"),
            ("compound", "$(VAR_A)_$(VAR_B)_$(VAR_C)", "A_B_C"),
            ("escape & expand", "$$(VAR_B)_$(VAR_A)", "$(VAR_B)_A"),
            (
                "compound escape",
                "$$(VAR_A)_$$(VAR_B)",
                "$(VAR_A)_$(VAR_B)",
            ),
            ("mixed in escapes", "f000-$$VAR_A", "f000-$VAR_A"),
            ("backslash escape ignored", "foo\\$(VAR_C)bar", "foo\\Cbar"),
            (
                "backslash escape ignored 2",
                "foo\\\\$(VAR_C)bar",
                "foo\\\\Cbar",
            ),
            (
                "lots of backslashes",
                "foo\\\\\\\\$(VAR_A)bar",
                "foo\\\\\\\\Abar",
            ),
            (
                "nested var references",
                "$(VAR_A$(VAR_B))",
                "$(VAR_A$(VAR_B))",
            ),
            (
                "nested var references second type",
                "$(VAR_A$(VAR_B)",
                "$(VAR_A$(VAR_B)",
            ),
            ("value is a reference", "$(VAR_REF)", "$(VAR_A)"),
            (
                "value is a reference x 2",
                "%%$(VAR_REF)--$(VAR_REF)%%",
                "%%$(VAR_A)--$(VAR_A)%%",
            ),
            ("empty var", "foo$(VAR_EMPTY)bar", "foobar"),
            (
                "unterminated expression",
                "foo$(VAR_Awhoops!",
                "foo$(VAR_Awhoops!",
            ),
            (
                "expression without operator",
                "f00__(VAR_A)__",
                "f00__(VAR_A)__",
            ),
            ("shell special vars pass through", "$?_boo_$!", "$?_boo_$!"),
            ("bare operators are ignored", "$VAR_A", "$VAR_A"),
            (
                "undefined vars are passed through",
                "$(VAR_DNE)",
                "$(VAR_DNE)",
            ),
            (
                "multiple (even) operators, var undefined",
                "$$$$$$(BIG_MONEY)",
                "$$$(BIG_MONEY)",
            ),
            (
                "multiple (even) operators, var defined",
                "$$$$$$(VAR_A)",
                "$$$(VAR_A)",
            ),
            (
                "multiple (odd) operators, var undefined",
                "$$$$$$$(GOOD_ODDS)",
                "$$$$(GOOD_ODDS)",
            ),
            (
                "multiple (odd) operators, var defined",
                "$$$$$$$(VAR_A)",
                "$$$A",
            ),
            ("missing open expression", "$VAR_A)", "$VAR_A)"),
            ("shell syntax ignored", "${VAR_A}", "${VAR_A}"),
            (
                "trailing incomplete expression not consumed",
                "$(VAR_B)_______$(A",
                "B_______$(A",
            ),
            (
                "trailing incomplete expression, no content",
                "$(VAR_C)_______$(",
                "C_______$(",
            ),
            (
                "operator at end of input string is preserved",
                "$(VAR_A)foobarzab$",
                "Afoobarzab$",
            ),
            (
                "shell escaped incomplete expr",
                "foo-\\$(VAR_A",
                "foo-\\$(VAR_A",
            ),
            ("lots of $( in middle", "--$($($($($--", "--$($($($($--"),
            (
                "lots of $( in beginning",
                "$($($($($--foo$(",
                "$($($($($--foo$(",
            ),
            ("lots of $( at end", "foo0--$($($($(", "foo0--$($($($("),
            (
                "escaped operators in variable names are not escaped",
                "$(foo$$var)",
                "$(foo$$var)",
            ),
            ("newline not expanded", "\n", "\n"),
        ];
        for (name, input, want) in cases {
            assert_eq!(run(input), want, "{name}: {input:?}");
        }
    }

    #[test]
    fn edge_cases() {
        assert_eq!(run(""), "");
        assert_eq!(run("$"), "$");
        assert_eq!(run("$$"), "$");
        assert_eq!(run("$$$"), "$$");
        assert_eq!(run("$()"), "$()");
        assert_eq!(run("$(("), "$((");
        assert_eq!(run("$(()"), "$(()");
        assert_eq!(run("a$(VAR_A)$(VAR_B)b"), "aABb");
        assert_eq!(run("$(VAR_A"), "$(VAR_A");
        assert_eq!(run("$(VAR_A$(VAR_B)"), "$(VAR_A$(VAR_B)");
        assert_eq!(run("($(VAR_A))"), "(A)");
        // `$(` without a closer: scanning resumes after it, so a later reference still expands.
        assert_eq!(run("$(x $(VAR_A)"), "$(x $(VAR_A)");
        assert_eq!(run("$( $$ $(VAR_A"), "$( $ $(VAR_A");
    }

    #[test]
    fn expansion_is_not_recursive() {
        // The value of VAR_REF is inserted as is, never expanded again.
        assert_eq!(run("$(VAR_REF)$(VAR_REF)"), "$(VAR_A)$(VAR_A)");
    }

    #[test]
    fn unicode_is_preserved() {
        assert_eq!(run("é$é$(VAR_A)ü"), "é$éAü");
        assert_eq!(run("$€"), "$€");
        assert_eq!(run("$(日本)"), "$(日本)");
        let vars = HashMap::from([("日本", "ja")]);
        assert_eq!(
            expand("<$(日本)>", |k| vars.get(k).map(|v| v.to_string())),
            "<ja>"
        );
        assert_eq!(run("x$"), "x$");
        assert_eq!(run("🦀$(VAR_B)🦀$"), "🦀B🦀$");
    }
}
