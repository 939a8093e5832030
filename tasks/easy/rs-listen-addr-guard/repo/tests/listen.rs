use netcfg::{parse_listen, Listen, ListenError};

fn ok(host: &str, port: u16) -> Result<Listen, ListenError> {
    Ok(Listen {
        host: host.to_string(),
        port,
    })
}

#[test]
fn valid_addresses() {
    assert_eq!(parse_listen("127.0.0.1:8080"), ok("127.0.0.1", 8080));
    assert_eq!(parse_listen(":9000"), ok("0.0.0.0", 9000));
    assert_eq!(parse_listen("  localhost:1  "), ok("localhost", 1));
    assert_eq!(parse_listen("[::1]:443"), ok("[::1]", 443));
    assert_eq!(parse_listen("example.com:65535"), ok("example.com", 65535));
}

#[test]
fn missing_port_is_an_error_not_a_panic() {
    assert!(matches!(parse_listen("localhost"), Err(ListenError::MissingPort(_))));
    assert!(matches!(parse_listen(""), Err(ListenError::MissingPort(_))));
    assert!(matches!(parse_listen("10.0.0.1"), Err(ListenError::MissingPort(_))));
}

#[test]
fn empty_port_is_rejected() {
    assert!(matches!(parse_listen("localhost:"), Err(ListenError::BadPort(_))));
}

#[test]
fn port_zero_is_rejected() {
    assert_eq!(
        parse_listen("127.0.0.1:0"),
        Err(ListenError::BadPort("0".to_string()))
    );
    assert!(matches!(parse_listen(":00"), Err(ListenError::BadPort(_))));
}

#[test]
fn out_of_range_and_garbage_ports() {
    assert!(matches!(parse_listen("h:65536"), Err(ListenError::BadPort(_))));
    assert!(matches!(parse_listen("h:-1"), Err(ListenError::BadPort(_))));
    assert!(matches!(parse_listen("h:http"), Err(ListenError::BadPort(_))));
}

#[test]
fn errors_read_well() {
    let e = parse_listen("localhost").unwrap_err();
    assert_eq!(e.to_string(), "listen address `localhost` has no port");
}
