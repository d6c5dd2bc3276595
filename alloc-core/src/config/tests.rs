use super::*;

fn parse_collect(s: impl AsRef<[u8]>) -> (Options, Vec<String>) {
    let mut warnings = Vec::new();
    let o = parse(s.as_ref(), &mut |w| warnings.push(w.to_string()));
    (o, warnings)
}

fn parse_clean(s: &str) -> Options {
    let (o, w) = parse_collect(s);
    assert!(w.is_empty(), "{s}: {w:?}");
    o
}

fn path(s: &str) -> FixedPath {
    FixedPath::from_bytes(s.as_bytes()).unwrap()
}

#[test]
fn defaults_match_the_contract() {
    let o = parse_clean("");
    assert_eq!(o, Options::defaults());
    assert!(o.check_at_exit);
    assert_eq!((o.exitcode, o.failure_exitcode), (23, 24));
    assert!(o.report.is_empty() && o.suppressions.is_empty());
    assert_eq!(o.stack_depth, 32);
    assert!(o.fast_unwind && o.symbolize);
    assert_eq!((o.verbosity, o.max_leaks), (0, 0));
    assert!(o.use_stacks && o.use_registers && o.use_globals && o.use_tls);
    assert!(o.use_root_regions && o.use_other_mappings);
}

#[test]
fn every_key_takes_a_good_value() {
    type Check = fn(&Options) -> bool;
    let cases: &[(&str, Check)] = &[
        ("check_at_exit=0", |o| !o.check_at_exit),
        ("exitcode=0", |o| o.exitcode == 0),
        ("exitcode=255", |o| o.exitcode == 255),
        ("failure_exitcode=0", |o| o.failure_exitcode == 0),
        ("failure_exitcode=3", |o| o.failure_exitcode == 3),
        ("report=/tmp/r-%p.json", |o| o.report == path("/tmp/r-%p.json")),
        ("stack_depth=0", |o| o.stack_depth == 0),
        ("stack_depth=64", |o| o.stack_depth == 64),
        ("suppressions=supp.txt", |o| o.suppressions == path("supp.txt")),
        ("baseline=old.json", |o| o.baseline == path("old.json")),
        ("fast_unwind=0", |o| !o.fast_unwind),
        ("symbolize=0", |o| !o.symbolize),
        ("verbosity=2", |o| o.verbosity == 2),
        ("max_leaks=4294967295", |o| o.max_leaks == u32::MAX),
        ("use_stacks=0", |o| !o.use_stacks),
        ("use_registers=false", |o| !o.use_registers),
        ("use_globals=no", |o| !o.use_globals),
        ("use_tls=0", |o| !o.use_tls),
        ("use_root_regions=0", |o| !o.use_root_regions),
        ("use_other_mappings=0", |o| !o.use_other_mappings),
        ("check_at_exit=0,check_at_exit=1", |o| o.check_at_exit),
        ("report=/a,report=", |o| o.report.is_empty()),
        ("profile=/tmp/heap-%p.json", |o| o.profile == path("/tmp/heap-%p.json")),
        ("profile_signal=usr2", |o| o.profile_signal == Signal(crate::platform::SIGUSR2)),
        ("profile_signal=SIGPROF", |o| o.profile_signal == Signal(crate::platform::SIGPROF)),
        ("profile_signal=40", |o| o.profile_signal == Signal(40)),
        ("profile_signal=HUP,profile_signal=", |o| o.profile_signal == Signal::NONE),
        ("stop_signal=PWR", |o| o.stop_signal == StopSignal::DEFAULT),
        ("stop_signal=sigusr2", |o| o.stop_signal.number() == 12),
        ("stop_signal=XCPU", |o| o.stop_signal.number() == 24),
        ("stop_signal=SYS", |o| o.stop_signal.number() == 31),
        ("stop_signal=10", |o| o.stop_signal.number() == 10),
        ("stop_signal=RTMIN", |o| o.stop_signal.number() == platform::rt_signal_min()),
        ("stop_signal=SIGRTMIN+3", |o| o.stop_signal.number() == platform::rt_signal_min() + 3),
        ("stop_signal=rtmax-13", |o| o.stop_signal.number() == platform::rt_signal_max() - 13),
        ("sweep=1", |o| o.sweep == Thresholds([700, 10, 10])),
        ("sweep=0", |o| o.sweep == Thresholds::OFF && !o.sweep.enabled()),
        ("sweep=100/0/5", |o| o.sweep == Thresholds([100, 0, 5]) && o.sweep.enabled()),
        ("sweep=0/10/10", |o| !o.sweep.enabled()),
        ("sweep_interval_ms=100", |o| o.sweep_interval_ms == 100),
        ("sweep_signal=USR1", |o| o.sweep_signal == Signal(crate::platform::SIGUSR1)),
        ("sweep_young=fallback", |o| o.sweep_young == YoungSweep::Fallback),
        ("sweep_young=auto", |o| o.sweep_young == YoungSweep::Auto),
        ("zero_new=0", |o| o.zero_new == ZeroNew::Never),
        ("zero_new=1", |o| o.zero_new == ZeroNew::Always),
        ("zero_new=scopes", |o| o.zero_new == ZeroNew::Scopes),
    ];
    for (input, check) in cases {
        assert!(check(&parse_clean(input)), "{input}");
    }
    let keys: Vec<&str> = cases.iter().map(|(i, _)| i.split('=').next().unwrap()).collect();
    for o in OPTIONS {
        assert!(keys.contains(&o.name), "no good-value case for {}", o.name);
    }
}

#[test]
fn every_key_warns_once_on_a_bad_value_and_keeps_its_default() {
    let long = "x".repeat(FixedPath::CAPACITY + 1);
    let cases: Vec<(String, &str)> = vec![
        ("check_at_exit=2".into(), "bad value '2' for check_at_exit: expected 0 or 1; using 1"),
        ("exitcode=256".into(), "bad value '256' for exitcode: expected an integer 0..=255; using 23"),
        ("exitcode=-1".into(), "for exitcode: expected an integer 0..=255"),
        ("failure_exitcode=x".into(), "bad value 'x' for failure_exitcode: expected an integer 0..=255; using 24"),
        (format!("report={long}"), "for report: expected a path of at most 4095 bytes; using none"),
        ("stack_depth=65".into(), "bad value '65' for stack_depth: expected an integer 0..=64; using 32"),
        ("stack_depth=x".into(), "bad value 'x' for stack_depth: expected an integer 0..=64; using 32"),
        ("stack_depth=".into(), "bad value '' for stack_depth"),
        ("stack_depth=99999999999999999999999".into(), "for stack_depth: expected an integer"),
        (format!("suppressions={long}"), "for suppressions: expected a path"),
        (format!("baseline={long}"), "for baseline: expected a path"),
        ("fast_unwind=fast".into(), "bad value 'fast' for fast_unwind: expected 0 or 1; using 1"),
        ("symbolize=2".into(), "for symbolize: expected 0 or 1"),
        ("verbosity=3".into(), "bad value '3' for verbosity: expected an integer 0..=2; using 0"),
        ("max_leaks=4294967296".into(), "for max_leaks: expected an integer 0..=4294967295; using 0"),
        ("use_stacks=on".into(), "for use_stacks: expected 0 or 1"),
        ("use_registers=".into(), "for use_registers: expected 0 or 1"),
        ("use_globals=01".into(), "for use_globals"),
        ("use_tls=1.0".into(), "for use_tls"),
        ("use_root_regions=y".into(), "for use_root_regions"),
        ("use_other_mappings=-".into(), "for use_other_mappings"),
        (format!("profile={long}"), "for profile: expected a path of at most 4095 bytes; using none"),
        ("profile_signal=USR3".into(), "bad value 'USR3' for profile_signal: expected a signal name such as USR2"),
        ("profile_signal=65".into(), "for profile_signal: expected a signal name"),
        ("profile_signal=0".into(), "for profile_signal"),
        ("profile_signal=SIGSEGV".into(), "for profile_signal"),
        (
            "stop_signal=KILL".into(),
            "bad value 'KILL' for stop_signal: a signal that cannot be caught; expected a catchable signal such as \
             PWR, XCPU, SYS or USR2 (SIG optional), a number, or RTMIN+n; using PWR",
        ),
        ("stop_signal=SIGSTOP".into(), "for stop_signal: a signal that cannot be caught;"),
        ("stop_signal=segv".into(), "for stop_signal: a fault signal, which must reach the program;"),
        ("stop_signal=7".into(), "for stop_signal: a fault signal"),
        ("stop_signal=ABRT".into(), "for stop_signal: a fault signal"),
        ("stop_signal=CHLD".into(), "for stop_signal: a signal the kernel sends on its own"),
        ("stop_signal=PIPE".into(), "for stop_signal: a signal the kernel sends on its own"),
        ("stop_signal=32".into(), "for stop_signal: a signal glibc keeps for itself"),
        ("stop_signal=RTMAX".into(), "for stop_signal: one of the 13 highest real-time signals"),
        ("stop_signal=RTMAX-12".into(), "for stop_signal: one of the 13 highest real-time signals"),
        ("stop_signal=64".into(), "for stop_signal: one of the 13 highest real-time signals"),
        ("stop_signal=65".into(), "for stop_signal: not a signal on this system"),
        ("stop_signal=0".into(), "for stop_signal: not a signal on this system"),
        ("stop_signal=".into(), "bad value '' for stop_signal: expected a catchable signal"),
        ("stop_signal=POWER".into(), "bad value 'POWER' for stop_signal: expected a catchable signal"),
        ("stop_signal=RTMIN-1".into(), "bad value 'RTMIN-1' for stop_signal: expected"),
        ("stop_signal=RTMIN+99".into(), "for stop_signal: expected a catchable signal"),
        ("stop_signal=RTMIN+".into(), "for stop_signal: expected a catchable signal"),
        ("stop_signal=1234".into(), "for stop_signal: expected a catchable signal"),
        (
            "sweep=2".into(),
            "bad value '2' for sweep: expected 0 (off), 1 (700/10/10) or three integers T0/T1/T2; using 0",
        ),
        ("sweep=1/2".into(), "for sweep: expected 0 (off)"),
        ("sweep=1/2/3/4".into(), "for sweep: expected 0 (off)"),
        ("sweep=1/x/3".into(), "for sweep"),
        ("sweep=1//3".into(), "for sweep"),
        ("sweep=1/2/99999999999".into(), "for sweep"),
        (
            "sweep_interval_ms=x".into(),
            "bad value 'x' for sweep_interval_ms: expected an integer 0..=86400000; using 0",
        ),
        ("sweep_signal=USR9".into(), "for sweep_signal: expected a signal name"),
        ("sweep_young=never".into(), "bad value 'never' for sweep_young: expected auto or fallback; using auto"),
        ("zero_new=yes".into(), "bad value 'yes' for zero_new: expected 0, 1 or scopes; using scopes"),
    ];
    for (input, expected) in &cases {
        let (o, w) = parse_collect(input);
        assert_eq!(w.len(), 1, "{input}: {w:?}");
        assert!(w[0].starts_with("HEAPSWEEP: "), "{w:?}");
        assert!(w[0].contains(expected), "{input}: {:?} lacks {expected:?}", w[0]);
        assert_eq!(o, Options::defaults(), "{input}");
    }
    for o in OPTIONS {
        assert!(cases.iter().any(|(i, _)| i.starts_with(o.name)), "no bad-value case for {}", o.name);
    }
}

#[test]
fn the_stop_signal_cannot_also_write_profiles() {
    let (o, w) = parse_collect("stop_signal=USR2,profile_signal=USR2");
    assert_eq!(w, ["HEAPSWEEP: profile_signal is the stop signal (SIGUSR2); profile_signal ignored"]);
    assert_eq!((o.stop_signal.number(), o.profile_signal), (12, Signal::NONE));
    let (o, w) = parse_collect("profile_signal=30");
    assert_eq!(w, ["HEAPSWEEP: profile_signal is the stop signal (SIGPWR); profile_signal ignored"]);
    assert_eq!(o, Options::defaults());
    let o = parse_clean("stop_signal=XCPU,profile_signal=USR2");
    assert_eq!((o.stop_signal.to_string().as_str(), o.profile_signal), ("SIGXCPU", Signal(12)));
}

#[test]
fn the_sweep_signal_cannot_be_another_signal_in_use() {
    let (o, w) = parse_collect("sweep_signal=30"); // SIGPWR, the default stop signal
    assert_eq!(w, ["HEAPSWEEP: sweep_signal is the stop signal already; sweep_signal ignored"]);
    assert_eq!(o.sweep_signal, Signal::NONE);
    let (o, w) = parse_collect("profile_signal=USR1,sweep_signal=USR1");
    assert_eq!(w, ["HEAPSWEEP: sweep_signal is profile_signal already; sweep_signal ignored"]);
    assert_eq!((o.profile_signal, o.sweep_signal), (Signal(crate::platform::SIGUSR1), Signal::NONE));
    let o = parse_clean("profile_signal=USR2,sweep_signal=USR1");
    assert_eq!((o.profile_signal, o.sweep_signal), (Signal(12), Signal(crate::platform::SIGUSR1)));
}

#[test]
fn stop_signals_are_named_as_the_kernel_names_them() {
    let name = |v: &str| parse_clean(&format!("stop_signal={v}")).stop_signal.to_string();
    assert_eq!((name("30"), name("sigpwr"), name("12")), ("SIGPWR".into(), "SIGPWR".into(), "SIGUSR2".into()));
    let min = platform::rt_signal_min();
    assert_eq!(name(&format!("{}", min + 5)), "SIGRTMIN+5");
    assert_eq!(name("RTMAX-13"), format!("SIGRTMIN+{}", platform::rt_signal_max() - 13 - min));
}

#[test]
fn unknown_keys_and_malformed_entries_warn_and_the_rest_still_applies() {
    let (o, w) = parse_collect("bogus=1,verbosity=1,noequals,=5,exitcode=3");
    assert_eq!(
        w,
        [
            "HEAPSWEEP: unknown key 'bogus' (ignored)",
            "HEAPSWEEP: malformed entry 'noequals' (expected key=value; ignored)",
            "HEAPSWEEP: malformed entry '=5' (empty key; ignored)",
        ]
    );
    assert_eq!((o.verbosity, o.exitcode), (1, 3));
}

#[test]
fn separators_spaces_and_empty_pairs() {
    let o = parse_clean(" check_at_exit=0 ,exitcode = 7:report=/tmp/r.json, ,::,stack_depth=0 ,, suppressions=s.txt ");
    assert!(!o.check_at_exit);
    assert_eq!(o.exitcode, 7);
    assert_eq!(o.report, path("/tmp/r.json"));
    assert_eq!(o.stack_depth, 0);
    assert_eq!(o.suppressions, path("s.txt"));
    assert_eq!(parse_clean(",,: :,"), Options::defaults());
}

#[test]
fn quoted_values_may_hold_separators_and_spaces() {
    let o = parse_clean(r#"report="/tmp/a,b:c.json",exitcode="0": suppressions = " s p " "#);
    assert_eq!(o.report, path("/tmp/a,b:c.json"));
    assert_eq!(o.exitcode, 0);
    assert_eq!(o.suppressions, path(" s p "));
    assert!(parse_clean(r#"report="""#).report.is_empty());
}

#[test]
fn badly_quoted_values_are_malformed() {
    for input in [r#"report=a"b,c"d"#, r#"report="a"b""#, r#"report="abc"#, r#"report=abc""#] {
        let (o, w) = parse_collect(input);
        assert_eq!(w.len(), 1, "{input}: {w:?}");
        assert!(w[0].contains("malformed entry"), "{w:?}");
        assert!(o.report.is_empty());
    }
    // An unclosed quote runs to the end of the input: one warning, later pairs included.
    let (o, w) = parse_collect(r#"exitcode=1,report="abc,exitcode=2"#);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(o.exitcode, 1);
}

#[test]
fn warnings_are_single_bounded_lines() {
    let (_, w) = parse_collect(b"bad\nkey=1,report=\xff\xfe\",stack_depth=\x1b[31m");
    assert_eq!(w.len(), 2, "{w:?}");
    assert!(w[0].contains("bad\\nkey") && w[0].contains("unknown key"), "{w:?}");
    assert!(w[1].contains("\\u{1b}[31m"), "{w:?}");
    let (_, w) = parse_collect(b"\xff\xfe=1");
    assert_eq!(w, ["HEAPSWEEP: unknown key '\u{fffd}\u{fffd}' (ignored)"]);
    let (_, w) = parse_collect(format!("stack_depth={}", "9".repeat(5000)));
    assert_eq!(w.len(), 1);
    assert!(w[0].len() < 300 && w[0].contains("...") && w[0].ends_with("using 32"), "{w:?}");
}

#[test]
fn every_prefix_of_a_valid_input_parses() {
    let full = r#"check_at_exit=0,exitcode=5:report="/tmp/x,%p.json",stack_depth=16,verbosity=2"#;
    for end in 0..=full.len() {
        let (o, w) = parse_collect(&full[..end]);
        assert!(w.len() <= 1, "{}: {w:?}", &full[..end]);
        assert!(o.stack_depth <= 64 && o.exitcode <= 255 && o.verbosity <= 2);
    }
    let (o, w) = parse_collect(full);
    assert!(w.is_empty());
    assert_eq!((o.exitcode, o.stack_depth, o.verbosity), (5, 16, 2));
}

#[test]
fn pid_expands_in_paths() {
    let p = path("/tmp/leaks-%p.json");
    assert_eq!(Options::expand_path(&p, 4321).as_bytes(), b"/tmp/leaks-4321.json");
    assert_eq!(path("%p%p%").expand(7).as_bytes(), b"77%");
    assert_eq!(path("%%p%q").expand(0).as_bytes(), b"%0%q");
    assert_eq!(path("a%p").expand(u32::MAX).as_bytes(), b"a4294967295");
    assert_eq!(path("no pid").expand(1), path("no pid"));
    assert!(FixedPath::empty().expand(1).is_empty());
    // Cut at capacity, never beyond.
    let long = FixedPath::from_bytes(&[b'a'; FixedPath::CAPACITY - 2][..]).unwrap();
    let mut with_pid = long.as_bytes().to_vec();
    with_pid.extend_from_slice(b"%p");
    let e = FixedPath::from_bytes(&with_pid).unwrap().expand(12345);
    assert_eq!(e.as_bytes().len(), FixedPath::CAPACITY);
    assert!(e.as_bytes().ends_with(b"aa12"));
    assert_eq!(e.as_c_str().unwrap().to_bytes(), e.as_bytes());
}

#[test]
fn fixed_path_accessors() {
    let p = path("/tmp/r.json");
    assert_eq!(p.as_c_str().unwrap(), c"/tmp/r.json");
    assert_eq!(p.as_path(), std::path::Path::new("/tmp/r.json"));
    assert_eq!(p.to_string_lossy(), "/tmp/r.json");
    assert_eq!(format!("{}", p.display()), "/tmp/r.json");
    assert_eq!(format!("{p:?}"), "\"/tmp/r.json\"");
    assert_eq!(p.as_option(), Some(&p));
    assert_eq!(FixedPath::empty().as_option(), None);
    let odd = FixedPath::from_bytes(b"a\xffb\0c").unwrap();
    assert_eq!(odd.to_string_lossy(), "a\u{fffd}b\0c");
    assert!(odd.as_c_str().is_none());
    assert_eq!(FixedPath::from_bytes(&[b'x'; FixedPath::CAPACITY]).unwrap().as_bytes().len(), FixedPath::CAPACITY);
    assert!(FixedPath::from_bytes(&[b'x'; FixedPath::CAPACITY + 1]).is_none());
}

#[test]
fn options_table_is_complete_and_its_defaults_parse_back() {
    let contract = ["check_at_exit", "exitcode", "report", "stack_depth", "suppressions"];
    for key in contract {
        assert!(OPTIONS.iter().any(|o| o.name == key), "{key}");
    }
    for (i, o) in OPTIONS.iter().enumerate() {
        assert!(!o.description.is_empty() && !o.description.starts_with(' '), "{}", o.name);
        assert!(!o.values.is_empty(), "{}", o.name);
        assert!(OPTIONS[..i].iter().all(|p| p.name != o.name), "duplicate {}", o.name);
        let text = if o.default == "none" { "" } else { o.default };
        assert_eq!(parse_clean(&format!("{}={text}", o.name)), Options::defaults(), "{}", o.name);
    }
    let depth = OPTIONS.iter().find(|o| o.name == "stack_depth").unwrap();
    assert_eq!((depth.values, depth.default), ("0..=64", "32"));
}

#[test]
fn once_runs_the_initializer_once_across_threads() {
    use std::sync::atomic::AtomicUsize;
    static CELL: Once<u64> = Once::new(0);
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static FALLBACK: u64 = 1;
    let values: Vec<u64> = (0..8)
        .map(|_| {
            std::thread::spawn(|| {
                *CELL.get_or_init(&FALLBACK, || {
                    RUNS.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    42
                })
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().unwrap())
        .collect();
    assert_eq!(values, [42; 8]);
    assert_eq!(RUNS.load(Ordering::Relaxed), 1);
}

#[test]
fn once_reentered_by_its_initializer_returns_the_fallback() {
    static CELL: Once<u32> = Once::new(0);
    static FALLBACK: u32 = 7;
    let v = *CELL.get_or_init(&FALLBACK, || *CELL.get_or_init(&FALLBACK, || 99) + 1);
    assert_eq!(v, 8);
    assert_eq!(*CELL.get_or_init(&FALLBACK, || 99), 8);
}

#[test]
fn current_is_parsed_once_and_stable() {
    let a = current();
    assert!(core::ptr::eq(a, current()));
    assert!(a.stack_depth <= 64 && a.exitcode <= 255);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
        let (o, w) = parse_collect(&input);
        proptest::prop_assert!(o.stack_depth <= 64 && o.exitcode <= 255 && o.verbosity <= 2);
        for line in &w {
            proptest::prop_assert!(!line.contains('\n') && line.len() <= 400, "{:?}", line);
        }
    }

    #[test]
    fn near_valid_input_never_panics(input in "[a-z_=,:\"0-9%/. ]{0,160}") {
        let (o, w) = parse_collect(&input);
        proptest::prop_assert!(o.stack_depth <= 64 && o.exitcode <= 255);
        // Each warning names one entry; there are never more warnings than entries.
        proptest::prop_assert!(w.len() <= input.split([',', ':']).count());
    }

    #[test]
    fn generated_valid_inputs_round_trip(depth in 0u32..=64, code in 0u32..=255, sep in "[,:]", name in "[a-z/%.,:]{1,40}") {
        let input = format!("stack_depth={depth}{sep} exitcode={code}{sep}report=\"{name}\"");
        let o = parse_clean(&input);
        proptest::prop_assert_eq!((o.stack_depth, o.exitcode), (depth, code));
        proptest::prop_assert_eq!(o.report.as_bytes(), name.as_bytes());
    }
}
