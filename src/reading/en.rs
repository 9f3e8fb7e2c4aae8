//! English written forms → words as a person says them: money, dates, times, phone
//! numbers, e-mail addresses, links, percentages, units, ordinals, fractions, ranges,
//! Roman numerals, acronyms, emoticons, shouting. Each family is one pass over the text
//! (a regex and the function that says a match); passes run in a fixed order, the more
//! specific first ("$1,200.50" is money before "1,200" is a number). What the words are
//! is checked against espeak-ng itself: a lone letter "A" is read as the article, so
//! spelled letters use "eh" for it.

use super::numbers::{cardinal, decimal, digits, house, ordinal, plural_decade, year};
use regex::{Captures, Regex};
use std::sync::LazyLock;

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// A letter's name as espeak-ng should say it within a spelled word.
fn letter(c: char) -> String {
    match c.to_ascii_uppercase() {
        'A' => "eh".into(),
        c => c.to_string(),
    }
}

/// "FYI" → "F Y I", "ASAP" → "eh S eh P".
pub fn spell(word: &str) -> String {
    word.chars().filter(|c| c.is_ascii_alphanumeric()).map(letter).collect::<Vec<_>>().join(" ")
}

fn month(name: &str) -> Option<&'static str> {
    let n = name.trim_end_matches('.').to_ascii_lowercase();
    MONTHS.iter().find(|m| n.len() >= 3 && m.to_ascii_lowercase().starts_with(&n[..3])).copied()
}

fn date_words(m: u32, d: u32, y: Option<u64>, day_first: bool) -> Option<String> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let month = MONTHS[(m - 1) as usize];
    let day = ordinal(d as u64);
    let mut out = if day_first { format!("the {day} of {month}") } else { format!("{month} {day}") };
    if let Some(y) = y {
        out.push_str(", ");
        out.push_str(&year(y));
    }
    Some(out)
}

fn two_digit_year(y: &str) -> u64 {
    let v: u64 = y.parse().unwrap_or(0);
    match y.len() {
        2 if v < 50 => 2000 + v,
        2 => 1900 + v,
        _ => v,
    }
}

re!(URL, r#"(?i)\b(?:https?://|www\.)([a-z0-9.-]+)[^\s<>"')\]]*"#);
fn url(c: &Captures) -> String {
    let host = c[1].trim_start_matches("www.").trim_end_matches('.');
    // A sentence's own punctuation after the link is the sentence's.
    let tail: String = c[0].chars().rev().take_while(|c| ".,!?;:".contains(*c)).collect();
    let words = host.split('.').filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" dot ");
    format!(" a link to {words}{} ", tail.chars().rev().collect::<String>())
}

re!(EMAIL, r"\b([A-Za-z0-9._%+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)\b");
fn email(c: &Captures) -> String {
    let part =
        |s: &str| s.replace('.', " dot ").replace('_', " underscore ").replace('-', " dash ").replace('+', " plus ");
    let spaced = |s: String| s.split_whitespace().collect::<Vec<_>>().join(" ");
    format!(" {} at {} ", spaced(part(&c[1])), spaced(part(&c[2])))
}

/// (singular, plural, cent singular, cent plural)
fn currency(sym: &str) -> (&'static str, &'static str, &'static str, &'static str) {
    match sym {
        "£" | "GBP" => ("pound", "pounds", "penny", "pence"),
        "€" | "EUR" => ("euro", "euros", "cent", "cents"),
        "¥" | "JPY" => ("yen", "yen", "", ""),
        "₹" | "INR" => ("rupee", "rupees", "paisa", "paise"),
        "CHF" => ("franc", "francs", "centime", "centimes"),
        _ => ("dollar", "dollars", "cent", "cents"),
    }
}

fn scale_word(s: &str) -> Option<&'static str> {
    match s.to_ascii_lowercase().as_str() {
        "k" | "thousand" => Some("thousand"),
        "m" | "mn" | "million" => Some("million"),
        "b" | "bn" | "billion" => Some("billion"),
        "t" | "tn" | "trillion" => Some("trillion"),
        _ => None,
    }
}

fn money(sym: &str, int: &str, frac: Option<&str>, scale: Option<&str>, negative: bool) -> String {
    let (one, many, cent, cents) = currency(sym);
    let whole: u64 = int.replace(',', "").parse().unwrap_or(0);
    let sign = if negative { "minus " } else { "" };
    if let Some(scale) = scale.and_then(scale_word) {
        let amount = match frac {
            Some(f) => decimal(int, f.trim_end_matches('0')),
            None => cardinal(whole),
        };
        return format!("{sign}{amount} {scale} {many}");
    }
    let frac_value: u64 = frac.map(|f| format!("{f:0<2}")[..2].parse().unwrap_or(0)).unwrap_or(0);
    let main = format!("{} {}", cardinal(whole), if whole == 1 { one } else { many });
    let out = match (whole, frac_value) {
        (_, 0) => main,
        (0, c) if !cent.is_empty() => format!("{} {}", cardinal(c), if c == 1 { cent } else { cents }),
        (_, c) if !cent.is_empty() => format!("{main} and {} {}", cardinal(c), if c == 1 { cent } else { cents }),
        (_, _) => format!("{} {many}", decimal(int, frac.unwrap_or(""))),
    };
    format!("{sign}{out}")
}

re!(
    MONEY_SYMBOL,
    r"(-)?([$£€¥₹])\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?(?:\s?(thousand|million|billion|trillion|[kKmMbBtT]n?)\b)?"
);
fn money_symbol(c: &Captures) -> String {
    let s = money(&c[2], &c[3], c.get(4).map(|m| m.as_str()), c.get(5).map(|m| m.as_str()), c.get(1).is_some());
    format!(" {s} ")
}

re!(
    MONEY_CODE,
    r"\b(?:(USD|EUR|GBP|JPY|CHF|INR)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?|(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?\s?(USD|EUR|GBP|JPY|CHF|INR))\b"
);
fn money_code(c: &Captures) -> String {
    let s = match c.get(1) {
        Some(code) => money(code.as_str(), &c[2], c.get(3).map(|m| m.as_str()), None, false),
        None => money(&c[6], &c[4], c.get(5).map(|m| m.as_str()), None, false),
    };
    format!(" {s} ")
}

re!(PERCENT, r"(-)?\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s?%");
fn percent(c: &Captures) -> String {
    let sign = if c.get(1).is_some() { "minus " } else { "" };
    format!(" {sign}{} percent ", decimal(&c[2], c.get(3).map_or("", |m| m.as_str())))
}

fn am_pm(s: &str) -> &'static str {
    if s.to_ascii_lowercase().starts_with('p') {
        "P M"
    } else {
        "eh M"
    }
}

// "a.m." keeps its dots when a sentence starts after it; "am." leaves its dot alone.
re!(
    TIME,
    r"\b([01]?\d|2[0-3]):([0-5]\d)(?::([0-5]\d))?(?:\s?([aApP])(\.[mM]\.|[mM]\b))?(?:\s+\(?(EST|EDT|CST|CDT|MST|MDT|PST|PDT|GMT|UTC|CET|CEST|BST|IST|JST|AEST)\)?)?(\s+[A-Z])?"
);
fn time_words(h: u32, m: u32, ampm: Option<&str>) -> String {
    let hour = cardinal(h as u64);
    let mins = match (m, ampm) {
        (0, Some(_)) => String::new(),
        (0, None) if h <= 12 => " o'clock".into(),
        (0, None) => " hundred".into(),
        (m, _) if m < 10 => format!(" oh {}", cardinal(m as u64)),
        (m, _) => format!(" {}", cardinal(m as u64)),
    };
    match ampm {
        Some(p) => format!("{hour}{mins} {}", am_pm(p)),
        None => format!("{hour}{mins}"),
    }
}
/// The end of a sentence that a dotted "a.m." also ended, and what followed it.
fn sentence_after(dotted: Option<regex::Match>, next: Option<regex::Match>) -> String {
    match (dotted.is_some_and(|d| d.as_str().ends_with('.')), next) {
        (true, Some(n)) => format!(".{}", n.as_str()),
        (_, Some(n)) => n.as_str().to_string(),
        _ => String::new(),
    }
}
fn zone(z: Option<regex::Match>) -> String {
    z.map(|z| format!(" {}", spell(z.as_str()))).unwrap_or_default()
}
fn time(c: &Captures) -> String {
    let h: u32 = c[1].parse().unwrap_or(0);
    let m: u32 = c[2].parse().unwrap_or(0);
    let dots = if c.get(6).is_some() { None } else { c.get(5) };
    let after = sentence_after(dots, c.get(7));
    let pad = if after.is_empty() { " " } else { "" };
    format!(" {}{}{after}{pad}", time_words(h, m, c.get(4).map(|x| x.as_str())), zone(c.get(6)))
}

re!(
    HOUR_AMPM,
    r"\b(1[0-2]|0?[1-9])\s?([aApP])(\.[mM]\.|[mM]\b)(?:\s+\(?(EST|EDT|CST|CDT|MST|MDT|PST|PDT|GMT|UTC|CET|CEST|BST|IST|JST|AEST)\)?)?(\s+[A-Z])?"
);
fn hour_ampm(c: &Captures) -> String {
    let dots = if c.get(4).is_some() { None } else { c.get(3) };
    let after = sentence_after(dots, c.get(5));
    let pad = if after.is_empty() { " " } else { "" };
    format!(" {} {}{}{after}{pad}", cardinal(c[1].parse().unwrap_or(0)), am_pm(&c[2]), zone(c.get(4)))
}

re!(ISO_DATE, r"\b(\d{4})-(\d{2})-(\d{2})\b");
fn iso_date(c: &Captures) -> String {
    let y: u64 = c[1].parse().unwrap_or(0);
    date_words(c[2].parse().unwrap_or(0), c[3].parse().unwrap_or(0), Some(y), false)
        .map(|d| format!(" {d} "))
        .unwrap_or_else(|| c[0].to_string())
}

re!(NUMERIC_DATE, r"\b(\d{1,2})([/.])(\d{1,2})[/.](\d{4}|\d{2})\b");
fn numeric_date(c: &Captures, day_first: bool) -> String {
    let a: u32 = c[1].parse().unwrap_or(0);
    let b: u32 = c[3].parse().unwrap_or(0);
    let y = two_digit_year(&c[4]);
    // Dotted dates are day-first (European); a first field over 12 can only be a day.
    let df = &c[2] == "." || a > 12 || (day_first && b <= 12);
    let (m, d) = if df { (b, a) } else { (a, b) };
    date_words(m, d, Some(y), df).map(|d| format!(" {d} ")).unwrap_or_else(|| c[0].to_string())
}

re!(
    NAMED_DATE,
    r"(?i)\b(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?\s+(\d{1,2})(?:st|nd|rd|th)?\b(?:,?\s+(\d{4})\b)?"
);
fn named_date(c: &Captures) -> String {
    let Some(m) = month(&c[1]) else { return c[0].to_string() };
    let d: u64 = c[2].parse().unwrap_or(0);
    if !(1..=31).contains(&d) {
        return c[0].to_string();
    }
    let mut out = format!(" {m} {}", ordinal(d));
    if let Some(y) = c.get(3) {
        out.push_str(&format!(", {}", year(y.as_str().parse().unwrap_or(0))));
    }
    out + " "
}

re!(
    DAY_FIRST_DATE,
    r"(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sept?(?:ember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\.?(?:,?\s+(\d{4})\b)?"
);
fn day_first_date(c: &Captures) -> String {
    let Some(m) = month(&c[2]) else { return c[0].to_string() };
    let d: u64 = c[1].parse().unwrap_or(0);
    if !(1..=31).contains(&d) {
        return c[0].to_string();
    }
    let mut out = format!(" the {} of {m}", ordinal(d));
    if let Some(y) = c.get(3) {
        out.push_str(&format!(", {}", year(y.as_str().parse().unwrap_or(0))));
    }
    out + " "
}

re!(DECADE, r"\b(1[0-9]|20)([0-9]0)'?s\b");
fn decade(c: &Captures) -> String {
    let y: u64 = format!("{}{}", &c[1], &c[2]).parse().unwrap_or(0);
    format!(" {} ", plural_decade(&year(y)))
}
re!(SHORT_DECADE, r"(?i)(?:'|\b((?:the|early|late|mid|in)\s+))([2-9]0)s\b");
fn short_decade(c: &Captures) -> String {
    let lead = c.get(1).map_or("", |m| m.as_str());
    format!(" {lead}{} ", plural_decade(&cardinal(c[2].parse().unwrap_or(0))))
}

re!(
    PHONE,
    r"(?i)(?:(\+\d{1,3})[\s.-]?)?(?:\((\d{3})\)\s?|\b(\d{3})[\s.-])(\d{3})[\s.-](\d{4})\b(?:\s?(?:ext\.?|x|extension)\s?(\d{1,6})\b)?"
);
fn phone(c: &Captures) -> String {
    let mut groups = Vec::new();
    if let Some(cc) = c.get(1) {
        groups.push(format!("plus {}", digits(cc.as_str(), false)));
    }
    let area = c.get(2).or(c.get(3)).map(|m| m.as_str()).unwrap_or("");
    for g in [area, &c[4], &c[5]] {
        groups.push(digits(g, false));
    }
    if let Some(x) = c.get(6) {
        groups.push(format!("extension {}", digits(x.as_str(), false)));
    }
    format!(" {} ", groups.join(", "))
}
re!(LOCAL_PHONE, r"(?i)\b(\d{3})[.-](\d{4})\b(?:\s?(?:ext\.?|x|extension)\s?(\d{1,6})\b)?");
fn local_phone(c: &Captures) -> String {
    let mut groups = vec![digits(&c[1], false), digits(&c[2], false)];
    if let Some(x) = c.get(3) {
        groups.push(format!("extension {}", digits(x.as_str(), false)));
    }
    format!(" {} ", groups.join(", "))
}
re!(INTL_PHONE, r"\+(\d{1,3})((?:[\s.-]\d{1,8}){1,5})\b");
fn intl_phone(c: &Captures) -> String {
    let mut groups = vec![format!("plus {}", digits(&c[1], false))];
    groups.extend(c[2].split([' ', '.', '-']).filter(|g| !g.is_empty()).map(|g| digits(g, false)));
    format!(" {} ", groups.join(", "))
}

re!(ORDINAL, r"\b(\d{1,3}(?:,\d{3})*|\d+)(st|nd|rd|th)\b");
fn ordinal_words(c: &Captures) -> String {
    format!(" {} ", ordinal(c[1].replace(',', "").parse().unwrap_or(0)))
}

re!(FRACTION, r"\b(\d{1,2})/(\d{1,2})\b");
fn fraction(c: &Captures) -> String {
    let n: u64 = c[1].parse().unwrap_or(0);
    let d: u64 = c[2].parse().unwrap_or(0);
    let name = match d {
        2 => {
            if n == 1 {
                "half".to_string()
            } else {
                "halves".to_string()
            }
        }
        4 => {
            if n == 1 {
                "quarter".to_string()
            } else {
                "quarters".to_string()
            }
        }
        0 | 1 => return format!(" {} over {} ", cardinal(n), cardinal(d)),
        _ => {
            let o = ordinal(d);
            if n == 1 {
                o
            } else {
                format!("{o}s")
            }
        }
    };
    if n < d {
        // "1/2" → "one half"; a fraction that is also a date (12/25) went with the dates.
        format!(" {} {name} ", if n == 1 && d == 2 { "one".to_string() } else { cardinal(n) })
    } else {
        format!(" {} over {} ", cardinal(n), cardinal(d))
    }
}
re!(SHORT_DATE, r"\b(\d{1,2})/(\d{1,2})\b");
fn short_date(c: &Captures, day_first: bool) -> String {
    let a: u32 = c[1].parse().unwrap_or(0);
    let b: u32 = c[2].parse().unwrap_or(0);
    // A proper fraction with a small denominator is a fraction, the rest a date.
    if a < b && b <= 10 {
        return c[0].to_string();
    }
    let df = a > 12 || (day_first && b <= 12);
    let (m, d) = if df { (b, a) } else { (a, b) };
    date_words(m, d, None, df).map(|d| format!(" {d} ")).unwrap_or_else(|| c[0].to_string())
}

re!(
    ADDRESS,
    r"\b(\d{1,5})([A-Z])?\s+((?:[A-Z][a-z]+\s+){1,3})(Street|Avenue|Boulevard|Road|Lane|Drive|Court|Way|Place|Highway|Parkway|Terrace|Square)\b"
);
fn address(c: &Captures) -> String {
    let n = house(c[1].parse().unwrap_or(0));
    let letter = c.get(2).map(|l| format!(" {}", spell(l.as_str()))).unwrap_or_default();
    format!(" {n}{letter} {}{} ", &c[3], &c[4])
}

re!(RANGE, r"\b(\d+)\s?[–-]\s?(\d+)\b");
fn range(c: &Captures) -> String {
    format!(" {} to {} ", number_words(&c[1], ""), number_words(&c[2], ""))
}

/// (singular, plural)
fn unit(u: &str) -> Option<(&'static str, &'static str)> {
    Some(match u {
        "km" => ("kilometer", "kilometers"),
        "m" => ("meter", "meters"),
        "cm" => ("centimeter", "centimeters"),
        "mm" => ("millimeter", "millimeters"),
        "kg" => ("kilogram", "kilograms"),
        "g" => ("gram", "grams"),
        "mg" => ("milligram", "milligrams"),
        "lb" | "lbs" => ("pound", "pounds"),
        "oz" => ("ounce", "ounces"),
        "mi" => ("mile", "miles"),
        "ft" => ("foot", "feet"),
        "in" => ("inch", "inches"),
        "mph" => ("mile per hour", "miles per hour"),
        "km/h" | "kph" => ("kilometer per hour", "kilometers per hour"),
        "°C" => ("degree Celsius", "degrees Celsius"),
        "°F" => ("degree Fahrenheit", "degrees Fahrenheit"),
        "°" => ("degree", "degrees"),
        "KB" | "kB" => ("kilobyte", "kilobytes"),
        "MB" => ("megabyte", "megabytes"),
        "GB" => ("gigabyte", "gigabytes"),
        "TB" => ("terabyte", "terabytes"),
        "Mbps" => ("megabit per second", "megabits per second"),
        "GHz" => ("gigahertz", "gigahertz"),
        "MHz" => ("megahertz", "megahertz"),
        "ml" | "mL" => ("milliliter", "milliliters"),
        "l" | "L" => ("liter", "liters"),
        "h" | "hr" | "hrs" => ("hour", "hours"),
        "min" | "mins" => ("minute", "minutes"),
        "sec" | "secs" => ("second", "seconds"),
        _ => return None,
    })
}
re!(
    UNIT,
    r"(-)?\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s?(km/h|kph|km|cm|mm|mg|kg|lbs|lb|oz|mph|mi|ft|in|°C|°F|°|KB|kB|MB|GB|TB|Mbps|GHz|MHz|mL|ml|hrs|hr|mins|min|secs|sec|m|g|l|L|h)(?:\b|$|\s)"
);
fn unit_words(c: &Captures) -> String {
    let Some((one, many)) = unit(&c[4]) else { return c[0].to_string() };
    // "in", "m", "s", "h" and "l" after a number are units only when written tight or
    // unambiguous; "5 in the box" is not five inches.
    let tight = !c[0].trim_end().contains(' ') || !matches!(&c[4], "in" | "m" | "h" | "l" | "g");
    if !tight {
        return c[0].to_string();
    }
    let frac = c.get(3).map_or("", |m| m.as_str());
    let n = decimal(&c[2], frac);
    let sign = if c.get(1).is_some() { "minus " } else { "" };
    let plural = !(n == "one" && frac.is_empty());
    format!(" {sign}{n} {} ", if plural { many } else { one })
}

fn number_words(int: &str, frac: &str) -> String {
    let plain = int.replace(',', "");
    // A four-digit number without separators between 1100 and 2099 is read as a year.
    if frac.is_empty() && !int.contains(',') && plain.len() == 4 {
        if let Ok(y) = plain.parse::<u64>() {
            if (1100..2100).contains(&y) {
                return year(y);
            }
        }
    }
    if plain.len() > 15 {
        return digits(&plain, false);
    }
    decimal(int, frac)
}
re!(NUMBER, r"(^|[\s(\[])?(-)?\b(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?");
fn number(c: &Captures) -> String {
    let lead = c.get(1).map_or("", |m| m.as_str());
    // A minus sign only where a number starts (after a space or bracket), not in "9-5".
    let minus = if c.get(2).is_some() && (c.get(1).is_some() || c.get(0).is_some_and(|m| m.start() == 0)) {
        "minus "
    } else if c.get(2).is_some() {
        "- "
    } else {
        ""
    };
    format!("{lead} {minus}{} ", number_words(&c[3], c.get(4).map_or("", |m| m.as_str())))
}

re!(HASH_NUMBER, r"(?:#|\bNo\.\s?)(\d+)\b");

fn roman_value(s: &str) -> Option<u64> {
    let val = |c| match c {
        'I' => 1,
        'V' => 5,
        'X' => 10,
        'L' => 50,
        'C' => 100,
        'D' => 500,
        'M' => 1000,
        _ => 0,
    };
    let (mut total, mut prev) = (0u64, 0u64);
    for c in s.chars().rev() {
        let v = val(c);
        if v == 0 {
            return None;
        }
        if v < prev {
            total = total.checked_sub(v)?;
        } else {
            total += v;
            prev = v;
        }
    }
    (total > 0 && total < 4000).then_some(total)
}
re!(
    ROMAN_COUNTED,
    r"\b(Chapter|Part|Volume|Vol\.|Book|Act|Scene|Section|Phase|War|Bowl|Type|Class|Level|Stage|Appendix|Article)\s+([IVXLCDM]+)\b"
);
fn roman_counted(c: &Captures) -> String {
    match roman_value(&c[2]) {
        Some(v) => format!("{} {}", &c[1], cardinal(v)),
        None => c[0].to_string(),
    }
}
re!(ROMAN_NAME, r"\b([A-Z][a-z]+)\s+([IVX]{2,}|[VX])\b");
fn roman_name(c: &Captures) -> String {
    match roman_value(&c[2]) {
        Some(v) => format!("{} the {}", &c[1], ordinal(v)),
        None => c[0].to_string(),
    }
}

/// Words read as words though written in capitals (everything else short and all-caps
/// is spelled).
const CAPITAL_WORDS: &[&str] = &[
    "NASA", "NATO", "UNESCO", "UNICEF", "AIDS", "SCUBA", "LASER", "RADAR", "FIFA", "OPEC", "NAFTA", "OSHA", "FEMA",
    "GIF", "JPEG", "PIN", "RAM", "ROM", "SIM", "WIFI", "COVID", "OK", "ZIP", "CAPTCHA", "SWAT", "UEFA", "ASCII", "SQL",
    "NASDAQ", "IKEA", "LEGO", "SONY", "ADIDAS",
];
re!(SHOUTING, r"\b[A-Z][A-Z']+(?:[\s,.!?]+[A-Z][A-Z']+){2,}\b");
fn shouting(c: &Captures) -> String {
    c[0].split_inclusive(|ch: char| !ch.is_ascii_alphanumeric() && ch != '\'')
        .map(|w| {
            let core = w.trim_end_matches(|ch: char| !ch.is_ascii_alphanumeric());
            if is_initialism(core) {
                w.to_string()
            } else {
                w.to_lowercase()
            }
        })
        .collect()
}
/// In shouted text only a known initialism or one without a vowel (PDF, HTML) stays
/// capitals to be spelled; "PLEASE CALL ME" is words.
fn is_initialism(w: &str) -> bool {
    COMMON_INITIALISMS.contains(&w) || (w.len() >= 2 && w.len() <= 5 && !w.contains(['A', 'E', 'I', 'O', 'U', 'Y']))
}
/// Capitals that read as a word: a vowel between consonants, 4+ letters (SCUBA), not a
/// known initialism. Short ones (CEO, FBI, IBM) are spelled.
fn has_vowel_pattern(w: &str) -> bool {
    if w.len() < 4 || COMMON_INITIALISMS.contains(&w) {
        return false;
    }
    let v = |c: char| "AEIOU".contains(c);
    let chars: Vec<char> = w.chars().collect();
    chars.windows(3).any(|t| !v(t[0]) && v(t[1]) && !v(t[2])) && chars.iter().filter(|c| v(**c)).count() >= 2
}
const COMMON_INITIALISMS: &[&str] = &[
    "ASAP", "HTML", "HTTP", "HTTPS", "USB", "ATM", "FAQ", "URL", "CEO", "CFO", "CTO", "COO", "FBI", "CIA", "IRS",
    "USA", "UK", "EU", "UN", "IBM", "HR", "IT", "PR", "VIP", "ETA", "FYI", "AI", "API", "IOU", "DIY", "ID", "IOS",
    "OS",
];
re!(ACRONYM, r"\b([A-Z]{2,5}s?)\b");
fn acronym(c: &Captures) -> String {
    let w = &c[1];
    let (core, plural) = match w.strip_suffix('s') {
        Some(core) if core.len() >= 2 => (core, true),
        _ => (w, false),
    };
    if CAPITAL_WORDS.contains(&core) {
        return w.to_lowercase();
    }
    if core.chars().all(|c| c.is_ascii_uppercase()) && !has_vowel_pattern(core) {
        let spelled = spell(core);
        return if plural { format!("{spelled}'s") } else { spelled };
    }
    w.to_string()
}
re!(MIXED_INITIALISM, r"\b(PhD|PhDs|MBA|iOS|TV|PC|PCs|DJ|PS)\b");

re!(EMOTICON, r"(^|\s)(:-?\)|:-?D|;-?\)|:-?\(|:-?P|:-?p|:'\(|<3|:-?/|:-?O|:-?o|\^_\^|XD)(\s|$|[.,!?])");
fn emoticon(c: &Captures) -> String {
    let say = match &c[2] {
        ":)" | ":-)" | "^_^" => "smiley",
        ":D" | ":-D" | "XD" => "laughing",
        ";)" | ";-)" => "wink",
        ":(" | ":-(" | ":'(" => "sad face",
        ":P" | ":-P" | ":p" | ":-p" => "tongue out",
        "<3" => "heart",
        ":/" | ":-/" => "hmm",
        _ => "surprised",
    };
    format!("{}{say}{}", &c[1], &c[3])
}

fn emoji(c: char) -> Option<&'static str> {
    Some(match c {
        '😀' | '😃' | '😄' | '😁' | '🙂' | '☺' | '😊' => "smiley",
        '😂' | '🤣' | '😆' => "laughing",
        '😉' => "wink",
        '😢' | '😭' | '☹' | '🙁' | '😞' => "sad face",
        '❤' | '💕' | '💖' | '😍' | '🥰' => "heart",
        '👍' => "thumbs up",
        '👎' => "thumbs down",
        '🎉' | '🥳' => "celebration",
        '🙏' => "thank you",
        '🔥' => "fire",
        '😮' | '😲' => "surprised",
        _ => return None,
    })
}

fn emojis(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match emoji(c) {
            Some(say) => {
                out.push(' ');
                out.push_str(say);
                out.push(' ');
            }
            // Other pictographs, variation selectors and joiners are not read.
            None if ('\u{1F000}'..='\u{1FAFF}').contains(&c)
                || ('\u{2600}'..='\u{27BF}').contains(&c)
                || c == '\u{FE0F}'
                || c == '\u{200D}' => {}
            None => out.push(c),
        }
    }
    out
}

re!(REPEATED, r"([!?.,])[!?.,]+");
fn repeated(c: &Captures) -> String {
    let s = &c[0];
    if s.starts_with("..") || s.starts_with('…') {
        ", ".into()
    } else if s.contains('?') {
        "?".into()
    } else {
        c[1].to_string()
    }
}

re!(SPACES, r"[ \t]+");
re!(SPACE_BEFORE_PUNCT, r" ([,.!?;:)])");
re!(SPACE_AFTER_PAREN, r"\( ");

/// How ambiguous numeric dates are read: US month-first unless `day_first`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub day_first: bool,
}

/// Runs of three or more words in capitals are shouting, read as words: before the
/// substitution rules, which would break the run ("CALL ME ASAP" → "call me ASAP").
pub fn calm_shouting(text: &str) -> String {
    SHOUTING.replace_all(text, shouting).into_owned()
}

/// The built-in English passes, in order.
pub fn normalize(text: &str, o: Options) -> String {
    let t = emojis(text);
    let t = EMOTICON.replace_all(&t, emoticon);
    let t = URL.replace_all(&t, url);
    let t = EMAIL.replace_all(&t, email);
    let t = MONEY_SYMBOL.replace_all(&t, money_symbol);
    let t = MONEY_CODE.replace_all(&t, money_code);
    let t = PERCENT.replace_all(&t, percent);
    let t = ISO_DATE.replace_all(&t, iso_date);
    let t = NUMERIC_DATE.replace_all(&t, |c: &Captures| numeric_date(c, o.day_first));
    let t = PHONE.replace_all(&t, phone);
    let t = INTL_PHONE.replace_all(&t, intl_phone);
    let t = LOCAL_PHONE.replace_all(&t, local_phone);
    let t = TIME.replace_all(&t, time);
    let t = HOUR_AMPM.replace_all(&t, hour_ampm);
    let t = NAMED_DATE.replace_all(&t, named_date);
    let t = DAY_FIRST_DATE.replace_all(&t, day_first_date);
    let t = DECADE.replace_all(&t, decade);
    let t = SHORT_DECADE.replace_all(&t, short_decade);
    let t = SHORT_DATE.replace_all(&t, |c: &Captures| short_date(c, o.day_first));
    let t = FRACTION.replace_all(&t, fraction);
    let t = ORDINAL.replace_all(&t, ordinal_words);
    let t = HASH_NUMBER.replace_all(&t, |c: &Captures| format!(" number {} ", &c[1]));
    let t = ADDRESS.replace_all(&t, address);
    let t = UNIT.replace_all(&t, unit_words);
    let t = RANGE.replace_all(&t, range);
    let t = NUMBER.replace_all(&t, number);
    let t = ROMAN_COUNTED.replace_all(&t, roman_counted);
    let t = ROMAN_NAME.replace_all(&t, roman_name);
    let t = MIXED_INITIALISM.replace_all(&t, |c: &Captures| spell_mixed(&c[1]));
    let t = ACRONYM.replace_all(&t, acronym);
    let t = REPEATED.replace_all(&t, repeated);
    let t = symbols(&t);
    let t = SPACES.replace_all(&t, " ");
    let t = SPACE_BEFORE_PUNCT.replace_all(&t, "$1");
    let t = SPACE_AFTER_PAREN.replace_all(&t, "(");
    t.trim().to_string()
}

fn spell_mixed(w: &str) -> String {
    match w {
        "PhD" => "P H D".into(),
        "PhDs" => "P H D's".into(),
        "iOS" => "I O S".into(),
        w if w.ends_with('s') && w.len() > 2 => format!("{}'s", spell(&w[..w.len() - 1])),
        w => spell(w),
    }
}

fn symbols(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let chars: Vec<char> = t.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let spaced = |j: Option<&char>| j.is_none_or(|c| c.is_whitespace());
        match c {
            '&' => out.push_str(" and "),
            '@' => out.push_str(" at "),
            '=' => out.push_str(" equals "),
            '+' if spaced(chars.get(i + 1)) && i > 0 && spaced(chars.get(i - 1)) => out.push_str(" plus "),
            '/' => out.push(' '),
            '*' | '_' | '~' | '#' | '^' | '|' | '<' | '>' | '[' | ']' | '{' | '}' | '"' => out.push(' '),
            '•' | '·' | '–' | '—' => out.push_str(", "),
            '…' => out.push_str(", "),
            c => out.push(c),
        }
    }
    out
}
