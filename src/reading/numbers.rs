//! English number words: cardinals, ordinals, decimals, years, digit strings. Pure.

const ONES: [&str; 20] = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
];
const TENS: [&str; 10] = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"];
const SCALES: [(u64, &str); 6] = [
    (1_000_000_000_000_000_000, "quintillion"),
    (1_000_000_000_000_000, "quadrillion"),
    (1_000_000_000_000, "trillion"),
    (1_000_000_000, "billion"),
    (1_000_000, "million"),
    (1_000, "thousand"),
];

fn below_hundred(n: u64) -> String {
    if n < 20 {
        ONES[n as usize].to_string()
    } else if n.is_multiple_of(10) {
        TENS[(n / 10) as usize].to_string()
    } else {
        format!("{}-{}", TENS[(n / 10) as usize], ONES[(n % 10) as usize])
    }
}

fn below_thousand(n: u64) -> String {
    match (n / 100, n % 100) {
        (0, r) => below_hundred(r),
        (h, 0) => format!("{} hundred", ONES[h as usize]),
        (h, r) => format!("{} hundred {}", ONES[h as usize], below_hundred(r)),
    }
}

/// 1234 → "one thousand two hundred thirty-four".
pub fn cardinal(n: u64) -> String {
    if n < 1000 {
        return below_thousand(n);
    }
    let mut parts = Vec::new();
    let mut rest = n;
    for (scale, name) in SCALES {
        if rest >= scale {
            parts.push(format!("{} {name}", below_thousand(rest / scale)));
            rest %= scale;
        }
    }
    if rest > 0 {
        parts.push(below_thousand(rest));
    }
    parts.join(" ")
}

/// A signed integer: "minus five".
pub fn signed(n: i64) -> String {
    if n < 0 {
        format!("minus {}", cardinal(n.unsigned_abs()))
    } else {
        cardinal(n as u64)
    }
}

/// 21 → "twenty-first".
pub fn ordinal(n: u64) -> String {
    let words = cardinal(n);
    let (head, last) = match words.rfind([' ', '-']) {
        Some(i) => (&words[..=i], &words[i + 1..]),
        None => ("", words.as_str()),
    };
    let last = match last {
        "one" => "first".to_string(),
        "two" => "second".to_string(),
        "three" => "third".to_string(),
        "five" => "fifth".to_string(),
        "eight" => "eighth".to_string(),
        "nine" => "ninth".to_string(),
        "twelve" => "twelfth".to_string(),
        w if w.ends_with('y') => format!("{}ieth", &w[..w.len() - 1]),
        w => format!("{w}th"),
    };
    format!("{head}{last}")
}

/// Each digit by name: "4 0 7" → "four oh seven" when `oh`, else "four zero seven".
pub fn digits(s: &str, oh: bool) -> String {
    s.chars()
        .filter_map(|c| c.to_digit(10))
        .map(|d| if d == 0 && oh { "oh" } else { ONES[d as usize] })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "3.14" → "three point one four"; the integer part may carry thousands separators.
pub fn decimal(int: &str, frac: &str) -> String {
    let whole: u64 = int.replace(',', "").parse().unwrap_or(0);
    if frac.is_empty() {
        return cardinal(whole);
    }
    format!("{} point {}", cardinal(whole), digits(frac, false))
}

/// A year as people say it: 1999 → "nineteen ninety-nine", 2005 → "two thousand five",
/// 2024 → "twenty twenty-four", 1900 → "nineteen hundred".
pub fn year(y: u64) -> String {
    match y {
        2000..=2009 => cardinal(y),
        1000..=9999 if y.is_multiple_of(100) && !y.is_multiple_of(1000) => {
            format!("{} hundred", below_hundred(y / 100))
        }
        1000..=9999 if y % 100 < 10 && !y.is_multiple_of(1000) => {
            format!("{} oh {}", below_hundred(y / 100), ONES[(y % 100) as usize])
        }
        1000..=9999 if !y.is_multiple_of(1000) => format!("{} {}", below_hundred(y / 100), below_hundred(y % 100)),
        _ => cardinal(y),
    }
}

/// A house number as people say it: 123 → "one twenty-three", 1600 → "sixteen hundred",
/// 105 → "one oh five"; five digits and more one by one.
pub fn house(n: u64) -> String {
    let (high, low) = match n {
        0..=99 => return cardinal(n),
        100..=9999 => (n / 100, n % 100),
        _ => return digits(&n.to_string(), false),
    };
    let high = if high < 10 { ONES[high as usize].to_string() } else { below_hundred(high) };
    match low {
        0 => format!("{high} hundred"),
        1..=9 => format!("{high} oh {}", ONES[low as usize]),
        _ => format!("{high} {}", below_hundred(low)),
    }
}

/// The plural of a decade's words: "nineteen ninety" → "nineteen nineties".
pub fn plural_decade(words: &str) -> String {
    match words.strip_suffix('y') {
        Some(stem) => format!("{stem}ies"),
        None => format!("{words}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words() {
        assert_eq!(cardinal(0), "zero");
        assert_eq!(cardinal(1234), "one thousand two hundred thirty-four");
        assert_eq!(cardinal(1_000_001), "one million one");
        assert_eq!(cardinal(u64::MAX).split(' ').next(), Some("eighteen"));
        assert_eq!(ordinal(1), "first");
        assert_eq!(ordinal(22), "twenty-second");
        assert_eq!(ordinal(40), "fortieth");
        assert_eq!(ordinal(112), "one hundred twelfth");
        assert_eq!(year(1999), "nineteen ninety-nine");
        assert_eq!(year(2005), "two thousand five");
        assert_eq!(year(2024), "twenty twenty-four");
        assert_eq!(year(1900), "nineteen hundred");
        assert_eq!(year(1905), "nineteen oh five");
        assert_eq!(year(2000), "two thousand");
        assert_eq!(decimal("3", "14"), "three point one four");
        assert_eq!(signed(-5), "minus five");
        assert_eq!(plural_decade("nineteen ninety"), "nineteen nineties");
        assert_eq!(house(123), "one twenty-three");
        assert_eq!(house(1600), "sixteen hundred");
        assert_eq!(house(105), "one oh five");
        assert_eq!(house(42), "forty-two");
    }
}
