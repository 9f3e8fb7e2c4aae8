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

fn mail(name: &str) -> String {
    let raw = std::fs::read(format!("{}/tests/fixtures/mail/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    english().mail(&raw).iter().map(|p| p.join("\n")).collect::<Vec<_>>().join("\n\n")
}

#[test]
fn real_world_mails_read_only_what_the_sender_wrote() {
    assert_eq!(
        mail("gmail_top_posting.eml"),
        "An e-mail from Ann Lee.\nSubject: Reply: Lunch on Friday.\n\nSounds good!\nLet's meet at twelve thirty at the café on Main Street.\n\nSee you then,"
    );
    assert_eq!(
        mail("outlook_html_reply.eml"),
        "An e-mail from Smith, John.\nSubject: Reply: Q4 budget.\n\nHi Bob,\n\nThe Q4 budget is approved: one point two million dollars, up fifteen percent.\n\nThanks,"
    );
    assert_eq!(
        mail("thunderbird_bottom_posting.eml"),
        "An e-mail from Bob.\nSubject: Reply: Project plan.\n\nYes, the fifteenth works.\n\nI will."
    );
    assert_eq!(
        mail("latin1_signature.eml"),
        "An e-mail from Jürgen Müller.\nSubject: Café tomorrow.\n\nHi Bob,\n\nthe café opens at nine eh M.\nI'll bring the three reports.\n\nThanks,"
    );
    assert_eq!(
        mail("newsletter.eml"),
        "An e-mail from Acme News.\nSubject: Your December update.\n\nDecember update\n\nOur sale ends on December twenty-fourth.\nSave twenty percent with code X M eh S.\n\nNew app for I O S\n\nFree shipping over fifty dollars\n\nStore, Hours\n\nDowntown, nine eh M to six P M\n\nRead more on our blog."
    );
    assert_eq!(
        mail("three_attachments.eml"),
        "An e-mail from carol at example dot com.\nSubject: Files for the meeting.\n\nHere are the files.\nCall me at five five five, one two three, four five six seven if anything is missing.\n\nThree attachments: a P D F document, budget dot P D F; an image, team photo dot J P G; a spreadsheet, Q3 report dot X L S X."
    );
}

#[test]
fn attachments_are_announced_by_kind_and_name() {
    use super::cleanup::{announce, spoken_file_name, Attachment};
    assert_eq!(announce(&[], Lang::En), None);
    let one = [Attachment { name: Some("budget.pdf".into()), kind: "a PDF document" }];
    assert_eq!(announce(&one, Lang::En).as_deref(), Some("One attachment: a PDF document, budget dot P D F."));
    assert_eq!(announce(&one, Lang::De).as_deref(), Some("Ein Anhang: ein P D F Dokument, budget Punkt P D F."));
    let three = [
        Attachment { name: Some("Plan.xlsx".into()), kind: "a spreadsheet" },
        Attachment { name: None, kind: "an image" },
        Attachment { name: Some("notiz.txt".into()), kind: "a text file" },
    ];
    assert_eq!(
        announce(&three, Lang::De).as_deref(),
        Some("Drei Anhänge: eine Tabelle, Plan Punkt X L S X; ein Bild; eine Textdatei, notiz Punkt T X T.")
    );
    assert_eq!(spoken_file_name("Q3_report-final.xlsx", Lang::En), "Q3 report final dot X L S X");
    assert_eq!(spoken_file_name("README", Lang::En), "README");
}

#[test]
fn html_is_rendered_as_paragraphs_without_what_is_not_read() {
    use super::cleanup::html_to_text;
    let html = "<html><head><style>p{x:1}</style></head><body><p>One &amp; two</p><!-- hidden --><script>x()</script>\
<blockquote><p>quoted</p><blockquote>deeper</blockquote><p>still quoted</p></blockquote><p>After &#233;t&eacute; &#x41;</p></body></html>";
    assert_eq!(html_to_text(html), "One & two\n\nAfter été A");
}

#[test]
fn the_german_table() {
    let rules = Rules::parse(include_str!("../../prompts/de/substitutions.toml")).expect("the German rule file parses");
    let r = Reader { lang: Lang::De, ..Reader::new(rules) };
    let mut wrong = Vec::new();
    let mut n = 0;
    for line in include_str!("../../tests/fixtures/reading/de.tsv")
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (input, want) = line.split_once('\t').unwrap_or_else(|| panic!("no tab in {line:?}"));
        n += 1;
        let got = r.normalize(input);
        if got != want {
            wrong.push(format!("{input:?}\n   want {want:?}\n    got {got:?}"));
        }
    }
    assert!(wrong.is_empty(), "{} of {n} cases wrong:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn the_language_of_a_text_is_told_by_its_common_words() {
    assert_eq!(detect("Hallo Anna, die Besprechung ist morgen und wir sind nicht im Büro."), Some(Lang::De));
    assert_eq!(detect("Hi Ann, the meeting is tomorrow and we are not in the office."), Some(Lang::En));
    assert_eq!(detect("OK 12:30"), None);
}
