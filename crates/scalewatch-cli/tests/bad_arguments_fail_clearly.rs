//! Bad arguments to `demo` and `ramp` give a message that says what to change, and exit
//! with 2 (usage) before anything starts; a target that is not there exits with 1.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn scalewatch(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_scalewatch"))
        .args(args)
        .output()
        .unwrap();
    assert!(output.stdout.is_empty() || output.status.success());
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_arguments_exit_with_2_and_say_what_to_change() {
    let cases: &[(&[&str], &str)] = &[
        (&["demo", "--duration", "3s"], "ms per step; give at least"),
        (
            &["demo", "--duration", "soon"],
            "invalid value 'soon' for '--duration",
        ),
        (&["demo", "--levels", "1,2"], "at least 4 steps"),
        (&["demo", "--levels", "1,8,4,16"], "must rise strictly"),
        (&["demo", "--levels", "0,1,2,3"], "between 1 and 10000"),
        (&["demo", "--listen", "0.0.0.0:0"], "loopback only"),
        (&["demo", "--timeout", "0s"], "--timeout must be above 0"),
        (
            &["ramp", "https://127.0.0.1:8443/"],
            "https is not supported",
        ),
        (&["ramp", "127.0.0.1:3000"], "needs an http:// scheme"),
        (
            &["ramp", "http://127.0.0.1:1/", "-H", "no colon"],
            "`Name: value`",
        ),
        (
            &["ramp", "http://127.0.0.1:1/", "-X", "GE T"],
            "not an HTTP method",
        ),
        (
            &["ramp", "http://127.0.0.1:1", "--grpc", "Greeter/SayHello"],
            "/package.Service/Method",
        ),
        (
            &[
                "ramp",
                "http://127.0.0.1:1/",
                "--body-file",
                "/nonexistent/body",
            ],
            "cannot read /nonexistent/body",
        ),
        (&["ramp"], "required arguments were not provided"),
    ];
    for (args, expected) in cases {
        let (code, stderr) = scalewatch(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains(expected),
            "{args:?}: expected `{expected}` in {stderr}"
        );
    }
}

#[test]
fn a_target_that_is_not_there_stops_the_ramp_with_1() {
    // Port 1 on loopback: nothing listens, every connection is refused.
    let (code, stderr) = scalewatch(&[
        "ramp",
        "http://127.0.0.1:1/",
        "--levels",
        "1,2,3,4",
        "--duration",
        "3s",
    ]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("every request at 1 users failed"),
        "{stderr}"
    );
    assert!(stderr.contains("transport error"), "{stderr}");
}
