//! Numbers as text: exact decimals (never through a float), and how JavaScript and Java write a number.

/// The largest exponent an amount may carry (`1.5E+3`); larger ones are not amounts anyone sends.
const MAX_EXPONENT: i32 = 40;

/// `text` as a plain decimal, if it is one (with or without an exponent).
pub fn decimal(text: &str) -> Option<String> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
        None => (unsigned, None),
    };
    let (whole, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !all_digits(whole) || !all_digits(frac) || (mantissa.contains('.') && frac.is_empty()) {
        return None;
    }
    let Some(exponent) = exponent else { return Some(text.to_owned()) };
    let exp_digits = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    if exp_digits.is_empty() || exp_digits.len() > 3 || !all_digits(exp_digits) {
        return None;
    }
    let exp: i32 = exponent.parse().ok()?;
    if exp.abs() > MAX_EXPONENT {
        return None;
    }
    let digits = format!("{whole}{frac}");
    let point = whole.len() as i32 + exp;
    let mut out = if point <= 0 {
        format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
    } else if point as usize >= digits.len() {
        format!("{digits}{}", "0".repeat(point as usize - digits.len()))
    } else {
        format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
    };
    let int_len = out.find('.').unwrap_or(out.len());
    let leading_zeros = out[..int_len.saturating_sub(1)].bytes().take_while(|&b| b == b'0').count();
    out.drain(..leading_zeros);
    Some(if negative { format!("-{out}") } else { out })
}

/// The shortest digits that read back as `x`, and where the point goes: `x` = 0.d1d2…dk × 10^n.
fn shortest(x: f64) -> (String, i32) {
    let written = format!("{:e}", x.abs());
    let (mantissa, exponent) = written.split_once('e').expect("{:e} writes an exponent");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    (digits.to_owned(), exponent.parse::<i32>().expect("a decimal exponent") + 1)
}

fn finite(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// `String(Number(text))` in JavaScript (ECMA-262, Number::toString).
pub(crate) fn javascript(text: &str) -> Option<String> {
    let x = finite(text)?;
    if x == 0.0 {
        return Some("0".to_owned());
    }
    let (d, n) = shortest(x);
    let k = d.len() as i32;
    let body = if k <= n && n <= 21 {
        format!("{d}{}", "0".repeat((n - k) as usize))
    } else if 0 < n && n <= 21 {
        format!("{}.{}", &d[..n as usize], &d[n as usize..])
    } else if -6 < n && n <= 0 {
        format!("0.{}{d}", "0".repeat(n.unsigned_abs() as usize))
    } else {
        let e = n - 1;
        let sign = if e > 0 { '+' } else { '-' };
        let fraction = if k > 1 { format!(".{}", &d[1..]) } else { String::new() };
        format!("{}{fraction}e{sign}{}", &d[..1], e.abs())
    };
    Some(if x < 0.0 { format!("-{body}") } else { body })
}

/// Jackson's text for a JSON number: integers as they are, others as Java's `Double.toString`.
pub(crate) fn jackson(text: &str) -> Option<String> {
    if !text.contains(['.', 'e', 'E']) {
        return Some(if text == "-0" { "0".to_owned() } else { text.to_owned() });
    }
    let x = finite(text)?;
    if x == 0.0 {
        return Some(if text.starts_with('-') { "-0.0" } else { "0.0" }.to_owned());
    }
    let (d, n) = shortest(x);
    let k = d.len() as i32;
    let body = if (1e-3..1e7).contains(&x.abs()) {
        if n <= 0 {
            format!("0.{}{d}", "0".repeat(n.unsigned_abs() as usize))
        } else if n >= k {
            format!("{d}{}.0", "0".repeat((n - k) as usize))
        } else {
            format!("{}.{}", &d[..n as usize], &d[n as usize..])
        }
    } else {
        let fraction = if k > 1 { &d[1..] } else { "0" };
        format!("{}.{fraction}E{}", &d[..1], n - 1)
    };
    Some(if x < 0.0 { format!("-{body}") } else { body })
}

/// A number's exact value as a plain decimal without redundant zeros, to compare two spellings.
pub(crate) fn exact(text: &str) -> Option<String> {
    let plain = decimal(text)?;
    let (negative, digits) = match plain.strip_prefix('-') {
        Some(rest) => (true, rest.to_owned()),
        None => (false, plain),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((&digits, ""));
    let whole = whole.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let value = match (whole, frac) {
        ("", "") => return Some("0".to_owned()),
        (w, "") => w.to_owned(),
        (w, f) => format!("{}.{f}", if w.is_empty() { "0" } else { w }),
    };
    Some(if negative { format!("-{value}") } else { value })
}
