//! Attack: decoy keys planted in the environment, a `.env` file and
//! `~/.ssh/id_rsa`, printed in every form a model might try. Honest control:
//! look-alikes that are not secrets come through untouched.

use super::*;
use serde_json::json;

const DOTENV: &str = include_str!("../../tests/fixtures/redact/dotenv");
const ID_RSA: &str = include_str!("../../tests/fixtures/redact/id_rsa");

// Decoys: shaped like real keys, not real keys.
const OPENAI: &str = "sk-proj-Xq3vT9bLmN2pR7sK4wY8zA1cD5eF6gH0jQ";
const ANTHROPIC: &str = "sk-ant-api03-Zr8Lk2Mn4Pq6St8Uv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4Kl6-Mn8Op0AA";
const PLAIN_TOKEN: &str = "Zq8vN3xLpT6wR1yB";
const DB_PASSWORD: &str = "hunter2-Correct-Horse";

fn env() -> Vec<(String, String)> {
    [
        ("OPENAI_API_KEY", OPENAI),
        ("ANTHROPIC_API_KEY", ANTHROPIC),
        ("MY_SERVICE_TOKEN", PLAIN_TOKEN),
        ("db_password", DB_PASSWORD),
        ("LOWER_API_KEY", "qwertyuiopasdfghjk"),
        // Harmless, even though the names match:
        ("AUTH_MODE", "password"),
        ("SESSION_TIMEOUT", "3600"),
        ("FEATURE_KEY_ENABLED", "true"),
        ("GIT_AUTHOR_NAME", "Jane Developer Smith"),
        ("SHORT_KEY", "abc123"),
        ("KEY_DIR", "/"),
        // Not secret-looking names at all:
        ("PATH", "/usr/local/bin:/usr/bin:/bin"),
        ("HOME", "/home/jane-developer-9"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

fn redactor() -> Redactor {
    let mut r =
        Redactor::from_env_with(&RedactSettings::builtin().expect("builtin"), env()).expect("r");
    r.add_file_values(DOTENV);
    r.add_file_values(ID_RSA);
    r
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn rev(s: &str) -> String {
    s.chars().rev().collect()
}

/// Every way a model would print `secret`.
fn forms(name: &str, secret: &str) -> Vec<String> {
    vec![
        secret.to_string(),
        format!("{name}={secret}"),
        format!("export {name}=\"{secret}\""),
        format!("the key is {secret}."),
        b64(secret),
        b64(&format!("{name}={secret}")),
        b64(&format!("x{secret}")),
        b64(&format!("xy{secret}\n")),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{name}={secret}")),
        hex::encode(secret),
        hex::encode(format!("{name}={secret}")),
        hex::encode_upper(secret),
        rev(secret),
        rev(&format!("{name}={secret}")),
        secret.to_uppercase(),
        secret.to_lowercase(),
        json!({ "output": format!("{name}={secret}") }).to_string(),
    ]
}

/// True when any recognisable piece of `secret` survives in `out`.
fn leaks(out: &str, secret: &str) -> bool {
    let pieces = [
        secret.to_string(),
        rev(secret),
        hex::encode(secret),
        secret.to_uppercase(),
        secret.to_lowercase(),
    ];
    pieces.iter().any(|p| out.contains(p.as_str()))
        || disguises(secret, 8)
            .iter()
            .filter(|d| d.len() >= 12)
            .any(|d| out.contains(d.as_str()))
}

#[test]
fn decoys_from_env_dotenv_and_ssh_are_redacted_in_every_form() {
    let r = redactor();
    let dotenv_values = [
        "VEkj4Z0TQjAuq8AImq",
        "sk_live_lR2RY9MIUIRrWRIaKcJZXLCh",
        "CQJcVjTemN-hKaFdU",
        "YyOKtszt99kHRUiHQsQ0ASZQO4Blc8Q2",
    ];
    let mut secrets: Vec<(&str, &str)> = vec![
        ("OPENAI_API_KEY", OPENAI),
        ("ANTHROPIC_API_KEY", ANTHROPIC),
        ("MY_SERVICE_TOKEN", PLAIN_TOKEN),
        ("db_password", DB_PASSWORD),
    ];
    secrets.push(("LOWER_API_KEY", "qwertyuiopasdfghjk"));
    secrets.extend(dotenv_values.iter().map(|v| ("VALUE", *v)));
    for (name, secret) in &secrets {
        for text in forms(name, secret) {
            let out = r.redact(&text);
            assert!(out.contains(REDACTED), "{name}: not redacted: {text}");
            assert!(!leaks(&out, secret), "{name}: {text} -> {out}");
        }
    }
    // The whole files, as `cat .env` and `cat ~/.ssh/id_rsa` print them.
    let out = r.redact(DOTENV);
    for v in dotenv_values {
        assert!(!out.contains(v), "{out}");
    }
    assert!(
        out.contains("API_TOKEN='[REDACTED]'"),
        "names are kept: {out}"
    );
    assert!(
        out.contains("DEBUG=true") && out.contains("PORT=8080"),
        "{out}"
    );
    let key_lines: Vec<&str> = ID_RSA.lines().filter(|l| !l.starts_with("-----")).collect();
    let out = r.redact(ID_RSA);
    for l in &key_lines {
        assert!(!out.contains(l), "{out}");
    }
    // Part of the key (`head -3`), which the PEM rule alone would miss.
    let head: String = ID_RSA
        .lines()
        .skip(1)
        .take(3)
        .collect::<Vec<_>>()
        .join("\n");
    let out = r.redact(&head);
    assert!(key_lines[..3].iter().all(|l| !out.contains(l)), "{out}");
}

#[test]
fn known_key_formats_are_redacted_without_being_told() {
    let r = Redactor::new(&RedactSettings::builtin().expect("builtin")).expect("r");
    let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAxq8v3Lp\nT6wR1yBZq8vN3x\n-----END RSA PRIVATE KEY-----";
    let cases = [
        (format!("key={OPENAI}"), OPENAI.to_string()),
        (format!("\"{ANTHROPIC}\""), ANTHROPIC.to_string()),
        ("id AKIAZ7Q2X4W9R3T5Y6U8 ok".into(), "AKIAZ7Q2X4W9R3T5Y6U8".into()),
        (
            "aws_secret_access_key = Zr8Lk2Mn4Pq6St8Uv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4K".into(),
            "Zr8Lk2Mn4Pq6St8Uv0Wx2Yz4Ab6Cd8Ef0Gh2Ij4K".into(),
        ),
        (
            "git push https://ghp_Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9j@github.com".into(),
            "ghp_Ab3dEf5hIj7lMn9pQr1tUv3xYz5bCd7fGh9j".into(),
        ),
        (
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz".into(),
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz".into(),
        ),
        (
            "SLACK=xoxb-1234567890-0987654321-AbCdEfGhIjKl".into(),
            "xoxb-1234567890-0987654321-AbCdEfGhIjKl".into(),
        ),
        (
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345".into(),
            "hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345".into(),
        ),
        (
            "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q".into(),
            "AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q".into(),
        ),
        (
            "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U".into(),
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0".into(),
        ),
        (
            "Authorization: Bearer 9f8e7d6c5b4a39281706f5e4d3c2b1a0".into(),
            "9f8e7d6c5b4a39281706f5e4d3c2b1a0".into(),
        ),
        (pem.into(), "MIIEowIBAAKCAQEAxq8v3Lp".into()),
        (
            "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (cut)".into(),
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC".into(),
        ),
        (
            "postgres://app:s3cr3t-Pa55word@db:5432/x".into(),
            "s3cr3t-Pa55word".into(),
        ),
        (
            "  \"client_secret\": \"Qm9vJk3Lr8Tz2Wx\",".into(),
            "Qm9vJk3Lr8Tz2Wx".into(),
        ),
        ("PASSWORD=Tr0ub4dor&3x".into(), "Tr0ub4dor&3x".into()),
        (
            "STRIPE_KEY: sk_live_AbCdEfGhIjKlMnOpQrSt1234".into(),
            "sk_live_AbCdEfGhIjKlMnOpQrSt1234".into(),
        ),
    ];
    for (text, secret) in cases {
        let out = r.redact(&text);
        assert!(!out.contains(&secret), "{text} -> {out}");
        assert!(out.contains(REDACTED), "{text} -> {out}");
    }
    // `.env` lines keep their names.
    assert_eq!(r.redact("PASSWORD=Tr0ub4dor&3x"), "PASSWORD=[REDACTED]");
    assert_eq!(
        r.redact("export API_KEY='Zq8vN3xLpT6wR1yB'\n"),
        "export API_KEY='[REDACTED]'\n"
    );
    assert_eq!(
        r.redact(pem),
        "-----BEGIN RSA PRIVATE KEY-----[REDACTED]-----END RSA PRIVATE KEY-----"
    );
}

#[test]
fn honest_look_alikes_are_kept() {
    let r = redactor();
    let honest = [
        "The token is refreshed every hour; pass the session cookie along.",
        "task-sk-1 and task-sk-2 are done",
        "sk-this-is-a-long-css-class-name-without-digits",
        "SHORT_KEY=abc123",
        "commit 3f786850e387550fdab836ed7e6dc881de23001b",
        "request id 123e4567-e89b-12d3-a456-426614174000",
        "api_key = os.environ[\"API_KEY\"]",
        "password = get_password(user)",
        "self.token = token",
        "auth_header = f\"Bearer {token}\"",
        "SESSION_ENGINE = \"django.contrib.sessions.backends.db\"",
        "AUTH_USER_MODEL = 'accounts.User'",
        "SESSION_TIMEOUT = 3600",
        "token_type: bearer_token",
        "secret_path = /etc/app/secret.conf",
        "password: \"Enter your password here\"",
        "The AUTH_MODE is password and FEATURE_KEY_ENABLED is true.",
        "Author: Jane Developer Smith <jane@example.com>",
        "PATH=/usr/local/bin:/usr/bin:/bin",
        "KEY=${API_KEY}",
        "aws example AKIAIOSFODNN7EXAMPLE is allow-listed",
        "",
    ];
    for text in honest {
        let out = r.redact(text);
        assert!(
            matches!(out, Cow::Borrowed(_)),
            "honest text was changed: {text} -> {out}"
        );
    }
}

#[test]
fn json_strings_and_keys_are_redacted_in_place() {
    let r = redactor();
    let mut v = json!({
        "steps": [
            {"tool": "run", "output": format!("OPENAI_API_KEY={OPENAI}\n")},
            {"tool": "read_file", "output": "clean", "n": 3},
        ],
        PLAIN_TOKEN: {"nested": [b64(DB_PASSWORD)]},
    });
    r.redact_json(&mut v);
    let s = v.to_string();
    assert!(!s.contains(OPENAI) && !s.contains(PLAIN_TOKEN), "{s}");
    assert!(!s.contains(&b64(DB_PASSWORD)), "{s}");
    assert_eq!(v["steps"][0]["output"], "OPENAI_API_KEY=[REDACTED]\n");
    assert_eq!(v["steps"][1]["output"], "clean");
    assert_eq!(v["steps"][1]["n"], 3);
    assert!(v.get(REDACTED).is_some(), "{s}");
}

#[test]
fn settings_add_patterns_names_and_allowed_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("redact.toml");
    std::fs::write(
        &path,
        "min_len = 10\nextra_env_names = [\"PIN\"]\nextra_patterns = ['\\bACME-(?P<s>[0-9]{6})\\b']\nallow = [\"Zq8vN3xLpT6wR1yB\"]\n",
    )
    .expect("write");
    let s = RedactSettings::load(Some(&path)).expect("load");
    let vars = [
        ("BANK_PIN", "48151623420"),
        ("MY_TOKEN", PLAIN_TOKEN),
        ("OTHER_TOKEN", "Ab1Cd2Ef3"),
    ];
    let mut r = Redactor::from_env_with(&s, vars).expect("r");
    assert_eq!(
        r.redact("pin 48151623420 ok"),
        "pin 48151623420 ok",
        "a number is a setting"
    );
    assert_eq!(r.redact("order ACME-123456"), "order ACME-[REDACTED]");
    // Allow-listed and too-short (under min_len 10) values stay.
    assert_eq!(r.redact(PLAIN_TOKEN), PLAIN_TOKEN);
    assert_eq!(r.redact("Ab1Cd2Ef3"), "Ab1Cd2Ef3");
    r.add_literal("Kx9-Lm8-Nz7-Pq6");
    assert_eq!(r.redact("pin Kx9-Lm8-Nz7-Pq6."), format!("pin {REDACTED}."));
    // A broken pattern is an error that names it, not a silent no-op.
    std::fs::write(&path, "extra_patterns = ['(unclosed']\n").expect("write");
    let s = RedactSettings::load(Some(&path)).expect("load");
    let e = Redactor::new(&s).unwrap_err().to_string();
    assert!(e.contains("(unclosed"), "{e}");
    std::fs::write(&path, "unknown_field = 1\n").expect("write");
    assert!(RedactSettings::load(Some(&path)).is_err());
}

#[test]
fn add_file_reads_masked_secret_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(".env.local");
    std::fs::write(&path, "INTERNAL_API_TOKEN=Mq7Tz3Wx9Kp2Lr5N\n").expect("write");
    let mut r = Redactor::new(&RedactSettings::builtin().expect("b")).expect("r");
    assert_eq!(r.redact("Mq7Tz3Wx9Kp2Lr5N"), "Mq7Tz3Wx9Kp2Lr5N");
    r.add_file(&path).expect("add");
    assert_eq!(r.redact("v=Mq7Tz3Wx9Kp2Lr5N"), format!("v={REDACTED}"));
    assert!(r.add_file(&dir.path().join("missing")).is_err());
}

#[test]
fn base64_of_a_secret_is_caught_at_every_offset_in_a_stream() {
    let r = redactor();
    for prefix in [
        "",
        "a",
        "ab",
        "abc",
        "KEY=",
        "OPENAI_API_KEY=",
        "{\"k\": \"",
    ] {
        for suffix in ["", "\n", "\"}", "xyz"] {
            let enc = b64(&format!("{prefix}{PLAIN_TOKEN}{suffix}"));
            let out = r.redact(&enc);
            assert!(out.contains(REDACTED), "{prefix:?}+{suffix:?}: {enc}");
        }
    }
}

#[test]
fn the_fast_path_does_not_allocate() {
    let r = redactor();
    let text = "fn main() { println!(\"hello\"); }\n".repeat(200);
    assert!(matches!(r.redact(&text), Cow::Borrowed(_)));
}
