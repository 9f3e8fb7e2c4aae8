//! The table of written forms and what is said for them (tests/fixtures/reading/en.tsv):
//! every family of the issue, each case as a person would say it.

use super::*;

fn english() -> Reader {
    let file = include_str!("../../prompts/en/substitutions.toml");
    Reader::new(Rules::parse(file).expect("the English rule file parses"))
}

#[test]
fn the_english_table() {
    let r = english();
    let table = include_str!("../../tests/fixtures/reading/en.tsv");
    let mut wrong = Vec::new();
    let mut n = 0;
    for line in table.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let (input, want) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in {line:?}"));
        n += 1;
        let got = r.normalize(input);
        if got != want {
            wrong.push(format!("{input:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(n >= 250, "{n} cases");
    assert!(wrong.is_empty(), "{} of {n} cases wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn paragraphs_and_sentences_are_kept_apart() {
    let r = english();
    let p = r.paragraphs("Hi Ann.\n\nThe meeting is at 10:30 am. Dr. Smith will\ncome. Bring $20!\n");
    assert_eq!(
        p,
        vec![
            vec!["Hi Ann.".to_string()],
            vec![
                "The meeting is at ten thirty eh M.".into(),
                "Doctor Smith will come.".into(),
                "Bring twenty dollars!".into()
            ]
        ]
    );
}

#[test]
fn hostile_text_never_panics() {
    let r = english();
    for s in [
        "$",
        "$,",
        "1/0",
        "0/0",
        "99999999999999999999999",
        "12/99/2024",
        "+",
        "::",
        "Jan 99",
        "--",
        "$1.",
        "1e10",
        "\u{1F600}\u{200D}",
        "MMMMMMMMMM",
        "25:99",
        "ⅷ",
        "٣",
        "...",
    ] {
        let _ = r.normalize(s);
    }
}
