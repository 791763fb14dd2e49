//! Kubernetes resource quantities (`100m`, `0.5`, `1Gi`, `1e3`, …), parsed exactly as
//! `k8s.io/apimachinery/pkg/api/resource.ParseQuantity` accepts them and converted with the
//! same rounding as `Quantity.Value()` / `Quantity.MilliValue()` (always up).
//!
//! Grammar:
//! ```text
//! <quantity>        ::= <sign><number><suffix>
//! <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
//! <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
//! <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
//! <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
//! <decimalExponent> ::= e <signedNumber> | E <signedNumber>
//! ```
//! The arithmetic is exact on decimal digits (no floating point), so any input — however long
//! or however large its exponent — converts without panicking; results above `u64::MAX`
//! saturate.

/// Why a quantity was refused; the message reads as the API server's.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    #[error("quantity {input:?} is not valid: {why}")]
    Invalid { input: String, why: &'static str },
    /// Below zero, where nothing this crate measures can be.
    #[error("must not be negative")]
    Negative,
    #[error("quantity {input:?} must not be negative")]
    NegativeValue { input: String },
}

impl QuantityError {
    /// The same error, naming the quantity `input` it is about.
    pub fn of(self, input: &str) -> Self {
        match self {
            Self::Negative => Self::NegativeValue {
                input: input.to_string(),
            },
            other => other,
        }
    }
}

/// A parsed quantity: `(-1)^negative × digits × 10^exp10 × 1024^pow1024`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Quantity {
    negative: bool,
    /// Decimal digits, most significant first, without leading zeros (empty for zero).
    digits: Vec<u8>,
    exp10: i64,
    pow1024: u32,
}

impl Quantity {
    /// The quantity `1`.
    pub fn one() -> Self {
        Self {
            negative: false,
            digits: vec![1],
            exp10: 0,
            pow1024: 0,
        }
    }

    /// Parses a quantity string; the error says what is wrong with it.
    pub fn parse(input: &str) -> Result<Self, QuantityError> {
        let bad = |why: &'static str| QuantityError::Invalid {
            input: input.to_string(),
            why,
        };
        let bytes = input.as_bytes();
        let mut pos = 0;
        let mut negative = false;
        match bytes.first() {
            None => return Err(bad("empty")),
            Some(b'-') => {
                negative = true;
                pos = 1;
            }
            Some(b'+') => pos = 1,
            Some(_) => {}
        }
        let int_start = pos;
        while pos < bytes.len() && bytes[pos].is_ascii_digit() {
            pos += 1;
        }
        let int_digits = &bytes[int_start..pos];
        let mut frac_digits: &[u8] = &[];
        if pos < bytes.len() && bytes[pos] == b'.' {
            pos += 1;
            let frac_start = pos;
            while pos < bytes.len() && bytes[pos].is_ascii_digit() {
                pos += 1;
            }
            frac_digits = &bytes[frac_start..pos];
        }
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(bad("expected a number"));
        }
        // `pos` only ever advanced over ASCII bytes, so it is a char boundary.
        let suffix = input.get(pos..).unwrap_or_default();
        let (suffix_exp10, pow1024): (i64, u32) = match suffix {
            "" => (0, 0),
            "n" => (-9, 0),
            "u" => (-6, 0),
            "m" => (-3, 0),
            "k" => (3, 0),
            "M" => (6, 0),
            "G" => (9, 0),
            "T" => (12, 0),
            "P" => (15, 0),
            "E" => (18, 0),
            "Ki" => (0, 1),
            "Mi" => (0, 2),
            "Gi" => (0, 3),
            "Ti" => (0, 4),
            "Pi" => (0, 5),
            "Ei" => (0, 6),
            s if s.len() > 1 && (s.starts_with('e') || s.starts_with('E')) => {
                let exp = &s[1..];
                let digits = exp.strip_prefix(['+', '-']).unwrap_or(exp);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(bad("unknown suffix"));
                }
                // Go parses the exponent as an int32.
                let exp: i32 = exp.parse().map_err(|_| bad("exponent out of range"))?;
                (i64::from(exp), 0)
            }
            _ => return Err(bad("unknown suffix")),
        };
        let mut digits: Vec<u8> = int_digits
            .iter()
            .chain(frac_digits)
            .map(|b| b - b'0')
            .skip_while(|d| *d == 0)
            .collect();
        let mut exp10 = suffix_exp10 - i64::try_from(frac_digits.len()).unwrap_or(i64::MAX / 2);
        // Trailing zeros only move the exponent; dropping them keeps the digits short.
        while digits.last() == Some(&0) {
            digits.pop();
            exp10 += 1;
        }
        Ok(Self {
            negative: negative && !digits.is_empty(),
            digits,
            exp10,
            pow1024,
        })
    }

    pub fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// `ceil(value)` in whole units, like Go's `Quantity.Value()`. Negative quantities are an
    /// error: nothing this crate measures can be below zero.
    pub fn ceil_units(&self) -> Result<u64, QuantityError> {
        self.ceil_scaled(0)
    }

    /// `ceil(value × 1000)`, like Go's `Quantity.MilliValue()` (CPU millicores).
    pub fn ceil_millis(&self) -> Result<u64, QuantityError> {
        self.ceil_scaled(3)
    }

    /// `ceil(value × 10^scale)`, saturating at `u64::MAX`.
    fn ceil_scaled(&self, scale: i64) -> Result<u64, QuantityError> {
        if self.negative {
            return Err(QuantityError::Negative);
        }
        if self.digits.is_empty() {
            return Ok(0);
        }
        let mut digits = self.digits.clone();
        for _ in 0..self.pow1024 {
            multiply_small(&mut digits, 1024);
        }
        let exp = self.exp10.saturating_add(scale);
        if exp >= 0 {
            let len = i64::try_from(digits.len())
                .unwrap_or(i64::MAX)
                .saturating_add(exp);
            if len > 20 {
                return Ok(u64::MAX);
            }
            let mut value = digits_to_u128(&digits);
            for _ in 0..exp {
                value = value.saturating_mul(10);
            }
            return Ok(u64::try_from(value).unwrap_or(u64::MAX));
        }
        // Negative exponent: integer part plus one if any dropped digit is non-zero.
        let drop = usize::try_from(exp.unsigned_abs()).unwrap_or(usize::MAX);
        if drop >= digits.len() {
            return Ok(1);
        }
        let (int_part, frac_part) = digits.split_at(digits.len() - drop);
        if int_part.len() > 20 {
            return Ok(u64::MAX);
        }
        let mut value = digits_to_u128(int_part);
        if frac_part.iter().any(|d| *d != 0) {
            value = value.saturating_add(1);
        }
        Ok(u64::try_from(value).unwrap_or(u64::MAX))
    }
}

/// `digits × factor` in place (most significant digit first).
fn multiply_small(digits: &mut Vec<u8>, factor: u32) {
    let mut carry: u64 = 0;
    for d in digits.iter_mut().rev() {
        let v = u64::from(*d) * u64::from(factor) + carry;
        *d = (v % 10) as u8;
        carry = v / 10;
    }
    while carry > 0 {
        digits.insert(0, (carry % 10) as u8);
        carry /= 10;
    }
}

/// At most 20 digits (checked by the callers), which always fit in a u128.
fn digits_to_u128(digits: &[u8]) -> u128 {
    digits.iter().fold(0u128, |acc, d| {
        acc.saturating_mul(10).saturating_add(u128::from(*d))
    })
}

/// Parses `q` and rounds it up to whole units (bytes, counts).
pub fn parse_units(q: &str) -> Result<u64, QuantityError> {
    Quantity::parse(q)?.ceil_units().map_err(|e| e.of(q))
}

/// Parses `q` and rounds it up to thousandths (CPU millicores).
pub fn parse_millis(q: &str) -> Result<u64, QuantityError> {
    Quantity::parse(q)?.ceil_millis().map_err(|e| e.of(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_is_the_quantity_1() {
        assert_eq!(Quantity::one(), Quantity::parse("1").unwrap());
    }

    #[test]
    fn errors_name_the_quantity() {
        assert_eq!(
            Quantity::parse("1x").unwrap_err().to_string(),
            "quantity \"1x\" is not valid: unknown suffix"
        );
        assert_eq!(
            parse_units("-1Gi").unwrap_err().to_string(),
            "quantity \"-1Gi\" must not be negative"
        );
        let negative = Quantity::parse("-1").unwrap();
        assert_eq!(
            negative.ceil_units().unwrap_err().to_string(),
            "must not be negative"
        );
    }

    #[test]
    fn cpu_millis() {
        for (q, want) in [
            ("100m", 100),
            ("0.5", 500),
            (".5", 500),
            ("5.", 5000),
            ("2", 2000),
            ("+2", 2000),
            ("1.5", 1500),
            ("0.1m", 1), // MilliValue rounds up
            ("1001m", 1001),
            ("250000u", 250),
            ("250000001n", 251),
            ("1e3", 1_000_000),
            ("1E3", 1_000_000),
            ("1e-3", 1),
            ("1.5e-3", 2),
            ("1k", 1_000_000),
            ("0", 0),
            ("0m", 0),
            ("-0", 0),
            ("000.000", 0),
            ("1Ki", 1_024_000),
        ] {
            assert_eq!(parse_millis(q), Ok(want), "{q}");
        }
    }

    #[test]
    fn memory_bytes() {
        for (q, want) in [
            ("1Gi", 1 << 30),
            ("512Mi", 512 << 20),
            ("1Ki", 1024),
            ("1.5Gi", 3 << 29),
            ("0.5Ki", 512),
            ("1G", 1_000_000_000),
            ("1M", 1_000_000),
            ("1k", 1000),
            ("1e3", 1000),
            ("1E", 1_000_000_000_000_000_000),
            ("1Ei", 1 << 60),
            ("1Pi", 1 << 50),
            ("1Ti", 1 << 40),
            ("128974848", 128_974_848),
            ("129e6", 129_000_000),
            ("123Mi", 128_974_848),
            ("1m", 1),      // Value() rounds up
            ("1500m", 2),   // 1.5 bytes -> 2
            ("0.001Ki", 2), // 1.024 bytes -> 2
            ("1e0", 1),
            ("1e+2", 100),
        ] {
            assert_eq!(parse_units(q), Ok(want), "{q}");
        }
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        assert_eq!(parse_units("16Ei"), Ok(u64::MAX));
        assert_eq!(parse_units("1e30"), Ok(u64::MAX));
        assert_eq!(parse_units("1e2147483647"), Ok(u64::MAX));
        assert_eq!(parse_units("99999999999999999999999999999"), Ok(u64::MAX));
        assert_eq!(parse_units("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_units("18446744073709551614"), Ok(u64::MAX - 1));
        assert_eq!(parse_units("1e-2147483648"), Ok(1));
        let long = format!("0.{}1", "0".repeat(10_000));
        assert_eq!(parse_units(&long), Ok(1));
        let huge = format!("{}Ei", "9".repeat(10_000));
        assert_eq!(parse_units(&huge), Ok(u64::MAX));
    }

    #[test]
    fn rejects_invalid() {
        for q in [
            "",
            " 1",
            "1 ",
            "abc",
            "1K",
            "1kb",
            "1gi",
            "1Gb",
            "1.2.3",
            ".",
            "-",
            "+",
            "1e",
            "1E+",
            "1e1.5",
            "1ee3",
            "1Ee3",
            "1e3Mi",
            "e3",
            "1i",
            "1e99999999999",
            "0x10",
            "1,5",
            "½",
            "1m\u{0}",
            "１",
        ] {
            assert!(Quantity::parse(q).is_err(), "{q:?} should not parse");
        }
    }

    #[test]
    fn negative_parses_but_does_not_convert() {
        let q = Quantity::parse("-1").unwrap();
        assert!(q.is_negative());
        assert!(q.ceil_units().is_err());
        assert!(parse_millis("-100m").is_err());
        assert!(!Quantity::parse("-0.0").unwrap().is_negative());
    }

    #[test]
    fn zero() {
        assert!(Quantity::parse("0Gi").unwrap().is_zero());
        assert!(!Quantity::parse("1n").unwrap().is_zero());
    }
}
