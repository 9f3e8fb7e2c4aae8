//! German written forms → words: numbers (with `.` for thousands and `,` for decimals),
//! ordinals in dates, dates (24.12.2024, 24. Dezember 2024, 2024-12-24), times (14:30
//! Uhr), money (12,50 €, € 1.200, 5 Mio. €), percentages, phone numbers, e-mail
//! addresses and links. Abbreviations are data: `prompts/de/substitutions.toml`.

use regex::{Captures, Regex};
use std::sync::LazyLock;

const ONES: [&str; 20] = [
    "null",
    "eins",
    "zwei",
    "drei",
    "vier",
    "fünf",
    "sechs",
    "sieben",
    "acht",
    "neun",
    "zehn",
    "elf",
    "zwölf",
    "dreizehn",
    "vierzehn",
    "fünfzehn",
    "sechzehn",
    "siebzehn",
    "achtzehn",
    "neunzehn",
];
const TENS: [&str; 10] =
    ["", "zehn", "zwanzig", "dreißig", "vierzig", "fünfzig", "sechzig", "siebzig", "achtzig", "neunzig"];
const MONTHS: [&str; 12] = [
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
];

fn below_hundred(n: u64) -> String {
    match n {
        0..=19 => ONES[n as usize].to_string(),
        _ if n.is_multiple_of(10) => TENS[(n / 10) as usize].to_string(),
        _ => {
            let unit = if n % 10 == 1 { "ein" } else { ONES[(n % 10) as usize] };
            format!("{unit}und{}", TENS[(n / 10) as usize])
        }
    }
}

fn below_thousand(n: u64) -> String {
    let (h, r) = (n / 100, n % 100);
    let head = match h {
        0 => String::new(),
        1 => "einhundert".to_string(),
        h => format!("{}hundert", ONES[h as usize]),
    };
    match (h, r) {
        (0, r) => below_hundred(r),
        (_, 0) => head,
        (_, 1) => format!("{head}eins"),
        (_, r) => format!("{head}{}", below_hundred(r)),
    }
}

/// 1234 → "eintausendzweihundertvierunddreißig"; millions and above as separate words.
pub fn cardinal(n: u64) -> String {
    if n == 0 {
        return "null".into();
    }
    // Past the billions (a thousand Billionen and more) nobody says the number: its
    // digits (found by tools/fuzz: the scale's count overran the word table).
    if n >= 1_000_000_000_000_000 {
        return n
            .to_string()
            .chars()
            .filter_map(|c| c.to_digit(10))
            .map(|d| ONES[d as usize])
            .collect::<Vec<_>>()
            .join(" ");
    }
    let mut parts: Vec<String> = Vec::new();
    let mut rest = n;
    for (scale, one, many) in [
        (1_000_000_000_000, "eine Billion", "Billionen"),
        (1_000_000_000, "eine Milliarde", "Milliarden"),
        (1_000_000, "eine Million", "Millionen"),
    ] {
        if rest >= scale {
            let k = rest / scale;
            parts.push(if k == 1 { one.to_string() } else { format!("{} {many}", below_thousand(k)) });
            rest %= scale;
        }
    }
    let mut small = String::new();
    if rest >= 1000 {
        let k = rest / 1000;
        small.push_str(&if k == 1 { "eintausend".to_string() } else { format!("{}tausend", below_thousand(k)) });
        rest %= 1000;
    }
    if rest > 0 {
        small.push_str(&below_thousand(rest));
    }
    if !small.is_empty() {
        parts.push(small);
    }
    parts.join(" ")
}

/// The ordinal as said in a date ("am vierundzwanzigsten" reads naturally as
/// "vierundzwanzigster" after the day's number too): 1 → "erster", 3 → "dritter".
pub fn ordinal(n: u64) -> String {
    match n {
        1 => "erster".into(),
        3 => "dritter".into(),
        7 => "siebter".into(),
        8 => "achter".into(),
        2..=19 => format!("{}ter", cardinal(n)),
        _ => format!("{}ster", cardinal(n)),
    }
}

fn year(y: u64) -> String {
    match y {
        1100..=1999 => {
            let (h, r) = (y / 100, y % 100);
            if r == 0 {
                format!("{}hundert", below_hundred(h))
            } else {
                format!("{}hundert{}", below_hundred(h), below_hundred(r))
            }
        }
        _ => cardinal(y),
    }
}

fn digits(s: &str) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| if d == 2 { "zwo" } else { ONES[d as usize] })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "1.234,5" → "eintausendzweihundertvierunddreißig Komma fünf".
fn number(int: &str, frac: Option<&str>) -> String {
    let whole: u64 = int.replace('.', "").parse().unwrap_or(0);
    match frac {
        Some(f) if !f.is_empty() => format!("{} Komma {}", cardinal(whole), digits(f).replace("zwo", "zwei")),
        _ => cardinal(whole),
    }
}

fn date(d: u64, m: u64, y: Option<u64>) -> Option<String> {
    if !(1..=31).contains(&d) || !(1..=12).contains(&m) {
        return None;
    }
    let mut out = format!("{} {}", ordinal(d), MONTHS[(m - 1) as usize]);
    if let Some(y) = y {
        out.push(' ');
        out.push_str(&year(y));
    }
    Some(out)
}

re!(URL, r#"(?i)\b(?:https?://|www\.)([a-z0-9.-]+)[^\s<>"')\]]*"#);
re!(EMAIL, r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b");
re!(NUM_DATE, r"\b(\d{1,2})\.(\d{1,2})\.(?:(\d{4}|\d{2})\b)?");
re!(ISO_DATE, r"\b(\d{4})-(\d{2})-(\d{2})\b");
re!(
    NAMED_DATE,
    r"\b(\d{1,2})\.\s?(Januar|Jan\.|Februar|Feb\.|März|April|Apr\.|Mai|Juni|Juli|August|Aug\.|September|Sept?\.|Oktober|Okt\.|November|Nov\.|Dezember|Dez\.)(?:\s+(\d{4}))?"
);
re!(TIME, r"\b([01]?\d|2[0-3])[:.]([0-5]\d)\s?Uhr\b|\b([01]?\d|2[0-3]):([0-5]\d)\b");
re!(HOUR, r"\b([01]?\d|2[0-3])\s?Uhr\b");
re!(MONEY_AFTER, r"(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}|-{1,2}))?\s?(€|EUR|Euro|\$|USD|CHF|Fr\.)(?:\s|$|[.,;!?])");
re!(MONEY_BEFORE, r"(€|EUR|\$|USD|CHF)\s?(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d{1,2}))?");
re!(SCALED_MONEY, r"(\d+)(?:,(\d+))?\s?(Mio\.|Millionen|Mrd\.|Milliarden)\s?(€|Euro|EUR)");
re!(PERCENT, r"(\d+)(?:,(\d+))?\s?%");
re!(PHONE, r"(?:\+(\d{1,3})\s?)?\(?0?(\d{2,5})\)?[\s/-](\d{3,9})(?:-(\d{1,5}))?\b");
re!(NUMBER, r"\b(\d{1,3}(?:\.\d{3})+|\d+)(?:,(\d+))?\b");
re!(SPACES, r"[ \t]+");
// "am 24.12." is "am vierundzwanzigsten": the ordinal after am, vom, zum … in the dative.
re!(DATIVE, r"\b(am|vom|zum|bis zum|ab dem|seit dem)\s+(\p{L}+?(?:ter|ster))\b");

fn currency(sym: &str) -> (&'static str, &'static str) {
    match sym {
        "$" | "USD" => ("Dollar", "Cent"),
        "CHF" | "Fr." => ("Franken", "Rappen"),
        _ => ("Euro", "Cent"),
    }
}

fn money(int: &str, frac: Option<&str>, sym: &str) -> String {
    let (name, cent) = currency(sym);
    let whole: u64 = int.replace('.', "").parse().unwrap_or(0);
    let cents: u64 =
        frac.filter(|f| !f.starts_with('-')).map(|f| format!("{f:0<2}")[..2].parse().unwrap_or(0)).unwrap_or(0);
    match (whole, cents) {
        (w, 0) => format!("{} {name}", cardinal(w)),
        (0, c) => format!("{} {cent}", cardinal(c)),
        (w, c) => format!("{} {name} {}", cardinal(w), cardinal(c)),
    }
}

/// The built-in German passes, in order.
pub fn normalize(text: &str) -> String {
    let t = URL.replace_all(text, |c: &Captures| {
        let host = c[1].trim_start_matches("www.").trim_end_matches('.');
        format!(" ein Link zu {} ", host.split('.').collect::<Vec<_>>().join(" Punkt "))
    });
    let t = EMAIL.replace_all(&t, |c: &Captures| {
        let part = |s: &str| s.replace('.', " Punkt ").replace('-', " Strich ").replace('_', " Unterstrich ");
        format!(" {} at {} ", part(&c[1]), part(&c[2]))
    });
    let t = SCALED_MONEY.replace_all(&t, |c: &Captures| {
        let n = number(&c[1], c.get(2).map(|m| m.as_str()));
        let scale = if c[3].starts_with("Mrd") || c[3].starts_with("Milliard") { "Milliarden" } else { "Millionen" };
        format!(" {n} {scale} Euro ")
    });
    let t = MONEY_AFTER.replace_all(&t, |c: &Captures| {
        let tail = c[0].chars().last().filter(|ch| ".,;!?".contains(*ch)).map(String::from).unwrap_or_default();
        format!(" {}{tail} ", money(&c[1], c.get(2).map(|m| m.as_str()), &c[3]))
    });
    let t =
        MONEY_BEFORE.replace_all(&t, |c: &Captures| format!(" {} ", money(&c[2], c.get(3).map(|m| m.as_str()), &c[1])));
    let t =
        PERCENT.replace_all(&t, |c: &Captures| format!(" {} Prozent ", number(&c[1], c.get(2).map(|m| m.as_str()))));
    let t = ISO_DATE.replace_all(&t, |c: &Captures| {
        date(c[3].parse().unwrap_or(0), c[2].parse().unwrap_or(0), c[1].parse().ok())
            .map(|d| format!(" {d} "))
            .unwrap_or_else(|| c[0].to_string())
    });
    let t = NAMED_DATE.replace_all(&t, |c: &Captures| {
        let m = MONTHS.iter().position(|m| m.starts_with(c[2].trim_end_matches('.'))).unwrap_or(0) as u64 + 1;
        date(c[1].parse().unwrap_or(0), m, c.get(3).and_then(|y| y.as_str().parse().ok()))
            .map(|d| format!(" {d} "))
            .unwrap_or_else(|| c[0].to_string())
    });
    let t = NUM_DATE.replace_all(&t, |c: &Captures| {
        let y = c.get(3).map(|y| {
            let v: u64 = y.as_str().parse().unwrap_or(0);
            if y.as_str().len() == 2 {
                2000 + v
            } else {
                v
            }
        });
        date(c[1].parse().unwrap_or(0), c[2].parse().unwrap_or(0), y)
            .map(|d| format!(" {d} "))
            .unwrap_or_else(|| c[0].to_string())
    });
    let t = TIME.replace_all(&t, |c: &Captures| {
        let (h, m) = match c.get(1) {
            Some(h) => (h.as_str(), &c[2]),
            None => (&c[3], &c[4]),
        };
        let (h, m): (u64, u64) = (h.parse().unwrap_or(0), m.parse().unwrap_or(0));
        let hour = if h == 1 { "ein".to_string() } else { cardinal(h) };
        if m == 0 {
            format!(" {hour} Uhr ")
        } else {
            format!(" {hour} Uhr {} ", cardinal(m))
        }
    });
    let t = HOUR.replace_all(&t, |c: &Captures| {
        let h: u64 = c[1].parse().unwrap_or(0);
        format!(" {} Uhr ", if h == 1 { "ein".to_string() } else { cardinal(h) })
    });
    let t = PHONE.replace_all(&t, |c: &Captures| {
        let mut groups = Vec::new();
        if let Some(cc) = c.get(1) {
            groups.push(format!("plus {}", digits(cc.as_str())));
        } else {
            groups.push(format!("null {}", digits(&c[2])));
        }
        if c.get(1).is_some() {
            groups.push(digits(&c[2]));
        }
        groups.push(digits(&c[3]));
        if let Some(x) = c.get(4) {
            groups.push(format!("Durchwahl {}", digits(x.as_str())));
        }
        format!(" {} ", groups.join(", "))
    });
    let t = NUMBER.replace_all(&t, |c: &Captures| format!(" {} ", number(&c[1], c.get(2).map(|m| m.as_str()))));
    let t = t.replace('&', " und ");
    let t = DATIVE.replace_all(&t, |c: &Captures| format!("{} {}n", &c[1], &c[2][..c[2].len() - 1]));
    let t = SPACES.replace_all(&t, " ");
    let t = t.replace(" ,", ",").replace(" .", ".").replace(" !", "!").replace(" ?", "?");
    t.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(cardinal(21), "einundzwanzig");
        assert_eq!(cardinal(101), "einhunderteins");
        assert_eq!(cardinal(1234), "eintausendzweihundertvierunddreißig");
        assert_eq!(cardinal(2_000_000), "zwei Millionen");
        assert_eq!(cardinal(1_500_000), "eine Million fünfhunderttausend");
        assert_eq!(cardinal(999_999_999_999_999).split(' ').next(), Some("neunhundertneunundneunzig"));
        assert_eq!(
            cardinal(111_111_000_000_000_000),
            "eins eins eins eins eins eins null null null null null null null null null null null null"
        );
        assert_eq!(cardinal(u64::MAX).split(' ').count(), 20, "no panic at the largest");
        assert_eq!(ordinal(3), "dritter");
        assert_eq!(ordinal(24), "vierundzwanzigster");
        assert_eq!(year(1999), "neunzehnhundertneunundneunzig");
        assert_eq!(year(2024), "zweitausendvierundzwanzig");
    }
}
