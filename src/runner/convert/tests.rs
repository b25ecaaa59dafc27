use super::*;
use prost::Message;

fn spec() -> RunSpec {
    let config = crate::core::Config::parse(
        "[checks.t]\nrun = [\"make\", \"x\"]\nenv = { A = \"1\" }\ndir = \"sub\"\nimage = \"alpine\"\n\
         secrets = [\"S\"]\ntimeout = \"5m\"\n",
    )
    .unwrap();
    let thunk = Thunk::new(&config.checks["t"], &"a".repeat(40), "https://example.com/r.git");
    RunSpec {
        thunk,
        clone_token: Some("tok".into()),
        run_id: "42".into(),
        event: EventContext { kind: "push".into(), repo: "o/r".into() },
    }
}

#[test]
fn run_requests_survive_the_wire() {
    let original = spec();
    let bytes = run_request(&original, String::new()).encode_to_vec();
    let back = run_spec(proto::RunRequest::decode(&bytes[..]).unwrap()).unwrap();
    assert_eq!(back.thunk, original.thunk);
    assert_eq!(back.thunk.id(), original.thunk.id());
    assert_eq!(
        (back.clone_token, back.run_id, back.event),
        (original.clone_token, original.run_id, original.event)
    );
}

#[test]
fn bad_requests_say_which_field() {
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().commit = "abc".into();
    assert!(run_spec(request).unwrap_err().contains("thunk.commit"));
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().timeout_ms = 0;
    assert!(run_spec(request).unwrap_err().contains("timeout_ms"));
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().dir = "../x".into();
    assert!(run_spec(request).unwrap_err().contains("inside the checkout"));
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().command = None;
    assert!(run_spec(request).unwrap_err().contains("thunk.command"));
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().env.insert("A=B".into(), "x".into());
    assert!(run_spec(request).unwrap_err().contains("\"A=B\" is not a variable name"));
    let mut request = run_request(&spec(), String::new());
    request.thunk.as_mut().unwrap().secrets.push("X\nY".into());
    assert!(run_spec(request).unwrap_err().contains("is not a variable name"));
}

#[test]
fn local_and_unknown_event_kinds_are_refused() {
    for kind in ["local", "LOCAL", "", "deployment_status", "push "] {
        let mut request = run_request(&spec(), String::new());
        request.event.as_mut().unwrap().kind = kind.into();
        let error = run_spec(request).unwrap_err();
        assert!(error.contains("is not an event a server sends"), "{kind}: {error}");
    }
    let mut request = run_request(&spec(), String::new());
    request.event = None;
    assert_eq!(run_spec(request).unwrap_err(), "the request has no event");
    for kind in SERVER_EVENT_KINDS {
        let mut request = run_request(&spec(), String::new());
        request.event.as_mut().unwrap().kind = kind.to_string();
        assert_eq!(run_spec(request).unwrap().event.kind, *kind);
    }
}

#[test]
fn info_off_the_wire_is_checked_field_by_field() {
    let good = || {
        info_to_proto(RunnerInfo {
            name: "laptop".into(),
            os: "linux".into(),
            arch: "amd64".into(),
            labels: vec!["gpu".into()],
            capacity: 2,
            runs_in_flight: 0,
            version: "0.1.0".into(),
            protocol_version: 1,
        })
    };
    assert_eq!(info_from_proto(good()).unwrap().name, "laptop");
    let mut bad = good();
    bad.name = "-rf".into();
    assert!(info_from_proto(bad).unwrap_err().starts_with("Info: name:"));
    let mut bad = good();
    bad.labels = vec!["x".into(); 20_002];
    assert!(info_from_proto(bad).unwrap_err().starts_with("Info: labels: 20002 labels"));
    let mut bad = good();
    bad.protocol_version = 0;
    assert!(info_from_proto(bad).unwrap_err().contains("protocol_version 0"));
}

#[test]
fn events_survive_the_wire() {
    let at = from_unix_ms(1_700_000_000_123);
    let events = [
        RunEvent::Started { checkout_started: at, started: at, commit: "c".into() },
        RunEvent::Output { stream: OutputStream::Stderr, data: "x\n".into(), at, seq: 7 },
        RunEvent::Step(Step {
            index: 2,
            name: "Build it".into(),
            kind: StepKind::Section,
            status: StepStatus::Failure,
            started: at,
            finished: Some(from_unix_ms(1_700_000_001_000)),
            first_line: 3,
            last_line: 9,
        }),
        RunEvent::Step(Step {
            index: 0,
            name: "checkout".into(),
            kind: StepKind::Checkout,
            status: StepStatus::Running,
            started: at,
            finished: None,
            first_line: 1,
            last_line: 1,
        }),
        RunEvent::Finished(Finished {
            outcome: Outcome::Signalled(9),
            timed_out: true,
            duration: Duration::from_millis(1500),
            output_chunks: 8,
        }),
    ];
    for event in events {
        let bytes = event_to_proto(event.clone()).encode_to_vec();
        let back = event_from_proto(proto::RunEvent::decode(&bytes[..]).unwrap()).unwrap();
        assert_eq!(back, event);
    }
}

mod steps {
    use super::super::*;

    fn good() -> proto::Step {
        proto::Step {
            index: 1,
            name: "run".into(),
            kind: proto::StepKind::Run as i32,
            status: proto::StepStatus::Success as i32,
            started_unix_ms: 1,
            finished_unix_ms: 2,
            first_line: 1,
            last_line: 1,
        }
    }

    #[test]
    fn steps_off_the_wire_are_checked() {
        assert!(step_from_proto(good()).is_ok());
        let bad: [fn(&mut proto::Step); 6] = [
            |s| s.kind = 0,
            |s| s.status = 99,
            |s| s.name = "x".repeat(SECTION_TITLE_MAX_CHARS + 1),
            |s| s.name = "a\x1b[2Jb".into(),
            |s| s.last_line = 0,
            |s| s.index = u32::MAX,
        ];
        for (i, change) in bad.iter().enumerate() {
            let mut step = good();
            change(&mut step);
            assert!(step_from_proto(step).is_err(), "change {i} was accepted");
        }
    }
}

mod recorded {
    use super::super::*;
    use prost::Message;

    /// A `RunRequest` as version 1 of the protocol encodes it, recorded from the first release.
    /// A runner must keep reading it the same way: fields are added, never renumbered.
    const RUN_REQUEST_V1: &str = "0a6f0a1968747470733a2f2f6578616d706c652e636f6d2f722e67697412\
        28616161616161616161616161616161616161616161616161616161616161616161616161616161612209\
        0a046d616b650a01782a060a014112013132037375623a06616c70696e6540e0a7124a0153520174120374\
        6f6b1a023432220b0a047075736812036f2f72";

    #[test]
    fn a_recorded_version_1_request_still_decodes() {
        let bytes = hex::decode(RUN_REQUEST_V1.replace(' ', "")).unwrap();
        let spec = run_spec(proto::RunRequest::decode(&bytes[..]).unwrap()).unwrap();
        assert_eq!(spec.thunk.clone_url, "https://example.com/r.git");
        assert_eq!(spec.thunk.commit, "a".repeat(40));
        assert_eq!(spec.thunk.command, Command::Argv(vec!["make".into(), "x".into()]));
        assert_eq!(spec.thunk.env.get("A").map(String::as_str), Some("1"));
        assert_eq!((spec.thunk.dir.as_str(), spec.thunk.image.as_deref()), ("sub", Some("alpine")));
        assert_eq!(spec.thunk.timeout, Duration::from_secs(300));
        assert_eq!(
            (spec.thunk.secrets, spec.thunk.check),
            (vec!["S".to_string()], "t".to_string())
        );
        assert_eq!((spec.clone_token.as_deref(), spec.run_id.as_str()), (Some("tok"), "42"));
        assert_eq!((spec.event.kind.as_str(), spec.event.repo.as_str()), ("push", "o/r"));
    }
}
