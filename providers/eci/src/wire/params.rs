//! RPC-style request parameters: a flat list of `name=value` pairs, where lists are spelled
//! `Container.1.Name`, `Container.1.Command.2`, ... The same pairs are signed, sent as an
//! `application/x-www-form-urlencoded` body or query, and parsed back by the mock cloud.

use crate::wire::sign::percent_encode;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Params(Vec<(String, String)>);

/// A parameter that is missing or malformed; the message names it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamError {
    #[error(
        "The input parameter \"{0}\" that is mandatory for processing this request is not supplied."
    )]
    Missing(String),
    #[error("The specified parameter \"{name}\" is not valid: {reason}")]
    Invalid { name: String, reason: String },
}

impl ParamError {
    pub fn invalid(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

/// Past this index a list parameter is refused: the real service caps lists far lower.
const MAX_INDEX: usize = 1000;

impl Params {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.push((name.into(), value.into()));
        self
    }

    /// Push only when there is a value.
    pub fn push_opt<V: ToString>(&mut self, name: &str, value: Option<V>) -> &mut Self {
        if let Some(v) = value {
            self.push(name, v.to_string());
        }
        self
    }

    /// Replace every value of `name` with one value.
    pub fn set(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.0.retain(|(k, _)| k != name);
        self.push(name, value)
    }

    /// The last value given for `name` (a repeated name overrides, as in a query string).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A value that must be there and not empty.
    pub fn required(&self, name: &str) -> Result<&str, ParamError> {
        self.get(name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ParamError::Missing(name.to_string()))
    }

    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name).filter(|v| !v.is_empty()).map(str::to_string)
    }

    pub fn parse<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ParamError> {
        match self.get(name).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ParamError::invalid(name, format!("{v:?} is not a valid value"))),
        }
    }

    /// `true`/`false` (case-insensitive); absent is `default`. So is `None`: the older Python
    /// SDK sends an unset boolean of a list member (`VolumeMount.N.ReadOnly`) as `str(None)`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, ParamError> {
        match self.get(name).map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("none") => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(ParamError::invalid(
                name,
                format!("{v:?} is not true or false"),
            )),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The members of list `prefix` (`prefix.1.x`, `prefix.2.x`, ...) in index order, each
    /// with its names relative to `prefix.N.`.
    pub fn members(&self, prefix: &str) -> Result<Vec<(usize, Params)>, ParamError> {
        let mut out: std::collections::BTreeMap<usize, Params> = Default::default();
        let lead = format!("{prefix}.");
        for (k, v) in &self.0 {
            let Some(rest) = k.strip_prefix(&lead) else {
                continue;
            };
            let (index, tail) = rest.split_once('.').unwrap_or((rest, ""));
            let n = parse_index(k, index)?;
            out.entry(n).or_default().push(tail, v.clone());
        }
        Ok(out.into_iter().collect())
    }

    /// The values of a list of scalars (`prefix.1`, `prefix.2`, ...) in index order.
    pub fn values(&self, prefix: &str) -> Result<Vec<String>, ParamError> {
        Ok(self
            .members(prefix)?
            .into_iter()
            .filter_map(|(_, p)| p.get("").map(str::to_string))
            .collect())
    }

    /// Percent-encoded `name=value&...`, for a query string or a form body.
    pub fn to_form(&self) -> String {
        let mut out = String::new();
        for (i, (k, v)) in self.0.iter().enumerate() {
            if i > 0 {
                out.push('&');
            }
            out.push_str(&percent_encode(k));
            out.push('=');
            out.push_str(&percent_encode(v));
        }
        out
    }

    /// Parse a query string or form body; `+` is a space, `%XY` a byte; pairs are appended.
    pub fn extend_from_form(&mut self, form: &str) -> Result<(), ParamError> {
        for pair in form.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decode_component(k)?;
            let value = decode_component(v).map_err(|_| {
                ParamError::invalid(name.clone(), "the value is not valid percent-encoded UTF-8")
            })?;
            self.push(name, value);
        }
        Ok(())
    }
}

fn parse_index(name: &str, index: &str) -> Result<usize, ParamError> {
    match index.parse::<usize>() {
        Ok(n) if (1..=MAX_INDEX).contains(&n) => Ok(n),
        _ => Err(ParamError::invalid(
            name,
            format!("list indexes run from 1 to {MAX_INDEX}"),
        )),
    }
}

fn decode_component(s: &str) -> Result<String, ParamError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| ParamError::invalid(s, "bad percent-encoding"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ParamError::invalid(s, "not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_round_trip_keeps_order_and_bytes() {
        let mut p = Params::new();
        p.push("A", "x y").push("B.1", "*/é").push("C", "");
        let form = p.to_form();
        assert_eq!(form, "A=x%20y&B.1=%2A%2F%C3%A9&C=");
        let mut back = Params::new();
        back.extend_from_form(&form).unwrap();
        assert_eq!(back, p);
        let mut plus = Params::new();
        plus.extend_from_form("A=x+y&flag").unwrap();
        assert_eq!(plus.get("A"), Some("x y"));
        assert_eq!(plus.get("flag"), Some(""));
        assert!(Params::new().extend_from_form("A=%zz").is_err());
        assert!(Params::new().extend_from_form("A=%ff").is_err());
    }

    #[test]
    fn members_and_values_follow_the_indexes() {
        let mut p = Params::new();
        p.push("Container.2.Name", "b")
            .push("Container.1.Name", "a")
            .push("Container.1.Command.2", "-c")
            .push("Container.1.Command.1", "sh")
            .push("Containerx", "ignored");
        let members = p.members("Container").unwrap();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].0, 1);
        assert_eq!(members[0].1.get("Name"), Some("a"));
        assert_eq!(members[0].1.values("Command").unwrap(), vec!["sh", "-c"]);
        assert_eq!(members[1].1.get("Name"), Some("b"));

        let mut bad = Params::new();
        bad.push("Tag.0.Key", "k");
        assert!(bad.members("Tag").is_err());
        let mut huge = Params::new();
        huge.push("Tag.1001.Key", "k");
        assert!(huge.members("Tag").is_err());
    }

    #[test]
    fn typed_getters() {
        let mut p = Params::new();
        p.push("N", "12")
            .push("B", "TRUE")
            .push("X", "zz")
            .push("E", "");
        assert_eq!(p.parse::<u32>("N").unwrap(), Some(12));
        assert_eq!(p.parse::<u32>("E").unwrap(), None);
        assert!(p.parse::<u32>("X").is_err());
        assert!(p.flag("B", false).unwrap());
        assert!(p.flag("missing", true).unwrap());
        assert!(p.flag("X", true).is_err());
        assert!(matches!(p.required("E"), Err(ParamError::Missing(_))));
        p.set("N", "13");
        assert_eq!(p.get("N"), Some("13"));
        assert_eq!(p.len(), 4);
    }
}
