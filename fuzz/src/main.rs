//! One AFL++ harness for every fuzz body: `fuzz-target NAME` runs `voxbridge::fuzz`'s
//! body of that name on each input; `fuzz-target --seeds DIR` writes the seed corpora.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--seeds") {
        let dir = std::path::Path::new(args.get(2).expect("--seeds DIR"));
        for (name, _) in voxbridge::fuzz::TARGETS {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).expect("corpus directory");
            for (i, seed) in voxbridge::fuzz::SEEDS.iter().enumerate() {
                std::fs::write(d.join(format!("seed-{i}")), seed).expect("seed file");
            }
        }
        return;
    }
    let name = args.get(1).expect("usage: fuzz-target NAME | --seeds DIR");
    let Some((_, body)) = voxbridge::fuzz::TARGETS.iter().find(|(n, _)| n == name) else {
        panic!("no fuzz target {name}; see voxbridge::fuzz::TARGETS");
    };
    // Without afl's abort-on-any-panic hook: a panic the code catches on purpose (the
    // audio decoder is third-party and wrapped in catch_unwind) is not a finding; one
    // that escapes the body still aborts and is.
    afl::fuzz_nohook!(|data: &[u8]| body(data));
}
