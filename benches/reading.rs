//! Pre-processing time of a mail body: the English rule file and written-form families
//! over a 1,000-word mail of everyday business text (money, dates, times, phone numbers,
//! links, abbreviations), and the time to its first sentence alone.
//! Run: `cargo bench --bench reading` (`cargo test --all-targets` runs a small smoke pass).

use std::time::Instant;
use voxbridge::reading::{Reader, Rules};

const PARAGRAPH: &str = "Hi Ann, FYI the Q3 review moved to 12/15/2024 at 3:30 p.m. EST in Room 4B. \
Dr. Smith expects revenue of $1.2M, up 15% on last year, and 2,500 new users. \
Call me at (555) 123-4567 ext. 12 or mail bob.jones@example.com before Fri. \
The report is at https://intranet.example.com/q3/report?id=7 and runs 45 pages. \
We meet at 123 Main St., 5th floor, approx. 10 km from the airport. Thanks :)";

fn mail(words: usize) -> String {
    let per = PARAGRAPH.split_whitespace().count();
    (0..words.div_ceil(per)).map(|_| PARAGRAPH).collect::<Vec<_>>().join("\n\n")
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let reps = if full { 200 } else { 3 };
    let reader = Reader::new(Rules::parse(include_str!("../prompts/en/substitutions.toml")).expect("rules"));
    let text = mail(1000);
    let words = text.split_whitespace().count();
    let _ = reader.paragraphs(&text); // compiles the patterns
    let mut best = f64::MAX;
    let mut first = f64::MAX;
    for _ in 0..reps {
        let t = Instant::now();
        let p = reader.paragraphs(&text);
        best = best.min(t.elapsed().as_secs_f64());
        assert!(p.len() > 10);
        let t = Instant::now();
        let _ = reader.normalize(text.split("\n\n").next().unwrap_or(""));
        first = first.min(t.elapsed().as_secs_f64());
    }
    println!(
        "pre-processing a {words}-word mail: {:.2} ms (best of {reps}); its first paragraph: {:.3} ms",
        best * 1e3,
        first * 1e3
    );

    // Rendering with espeak-ng (8 kHz): audio seconds per wall second, for a short and a
    // long mail, and how long the first sentence takes alone.
    for n in if full { vec![50, 5000] } else { vec![50] } {
        let sentences: Vec<String> = reader.paragraphs(&mail(n)).into_iter().flatten().collect();
        let text = sentences.join(" ");
        let t = Instant::now();
        let pcm = voxbridge::media::tts::synthesize(&text, "en-us", 150).expect("espeak-ng");
        let wall = t.elapsed().as_secs_f64();
        let secs = pcm.len() as f64 / 8000.0;
        let t = Instant::now();
        let _ = voxbridge::media::tts::synthesize(&sentences[0], "en-us", 150).expect("espeak-ng");
        println!(
            "rendering {n} words: {secs:.1} s of audio in {:.0} ms ({:.0}x real time); the first sentence alone {:.1} ms",
            wall * 1e3,
            secs / wall,
            t.elapsed().as_secs_f64() * 1e3
        );
    }

    // Streamed as the phone does it (services::messages::render_in_parts): when the first
    // part is ready to play, whatever the mail's length.
    for n in if full { vec![50, 5000] } else { vec![50] } {
        let paragraphs = reader.paragraphs(&mail(n));
        let t = Instant::now();
        let mut first_part = None;
        voxbridge::services::messages::render_in_parts(
            &paragraphs,
            "en-us",
            150,
            || true,
            |_, _, _| {
                first_part.get_or_insert(t.elapsed().as_secs_f64());
                true
            },
        )
        .expect("espeak-ng");
        println!(
            "streamed {n} words: first part ready after {:.1} ms, all in {:.0} ms",
            first_part.unwrap_or(0.0) * 1e3,
            t.elapsed().as_secs_f64() * 1e3
        );
    }
}
