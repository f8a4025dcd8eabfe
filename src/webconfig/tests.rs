//! Table tests of good and bad web configurations, each bad one with the exact error it gets.
//! Certificates are generated per test (rcgen) into a temporary directory beside the file.

use rcgen::{CertificateParams, KeyPair};

use super::*;

/// A bcrypt hash (of "pw", cost 4); no error may ever contain it.
const HASH: &str = "$2y$04$UTCxus06fMBTFaLFL3DiVOx9G6ph2B2aIZ2YDbOFqlCcUi73ao6um";

struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    /// A directory holding `server.pem` and `server.key` (a matching pair), `ca.pem`, and
    /// `other.key` (a key of another certificate).
    fn new() -> Dir {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(vec!["localhost".to_owned()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        std::fs::write(dir.path().join("server.pem"), cert.pem()).expect("write");
        std::fs::write(dir.path().join("server.key"), key.serialize_pem()).expect("write");
        std::fs::write(dir.path().join("ca.pem"), cert.pem()).expect("write");
        let other = KeyPair::generate().expect("key");
        std::fs::write(dir.path().join("other.key"), other.serialize_pem()).expect("write");
        Dir { dir }
    }

    fn origin(&self) -> String {
        self.dir.path().join("web.yml").display().to_string()
    }

    fn load(&self, yaml: &str) -> Result<WebConfig, ConfigError> {
        WebConfig::from_yaml(yaml, &self.origin())
    }
}

const TLS: &str = "tls_server_config:\n  cert_file: server.pem\n  key_file: server.key\n";

#[test]
fn bad_web_configs_get_exact_errors_naming_key_and_line() {
    let dir = Dir::new();
    let hash_user = format!("basic_auth_users:\n  alice: '{HASH}'\n");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "unknown top-level key",
            "tls_config: {}\n".to_owned(),
            "1:1: unknown field `tls_config`, expected one of `tls_server_config`, `http_server_config`, `basic_auth_users`, `rate_limit`",
        ),
        (
            "unknown TLS key",
            format!("{TLS}  certfile: x\n"),
            "4:3: tls_server_config: unknown field `certfile`, expected one of `cert`, `key`, `client_ca`, `cert_file`, `key_file`, `client_auth_type`, `client_ca_file`, `client_allowed_sans`, `min_version`, `max_version`, `cipher_suites`, `prefer_server_cipher_suites`, `curve_preferences`",
        ),
        (
            "unknown http_server_config key",
            "http_server_config:\n  header: {}\n".to_owned(),
            "2:3: http_server_config: unknown field `header`, expected `http2` or `headers`",
        ),
        (
            "unknown client auth type",
            format!("{TLS}  client_auth_type: RequireAndVerify\n"),
            "4:21: tls_server_config.client_auth_type: unknown client_auth_type \"RequireAndVerify\"; one of NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven, RequireAndVerifyClientCert",
        ),
        (
            "TLS 1.0",
            format!("{TLS}  min_version: TLS10\n"),
            "4:16: tls_server_config.min_version: TLS10 is not supported: rustls speaks TLS 1.2 and 1.3 only; use TLS12 or TLS13",
        ),
        (
            "minimum above maximum",
            format!("{TLS}  min_version: TLS13\n  max_version: TLS12\n"),
            "4:16: tls_server_config.min_version: TLS13 is above max_version TLS12",
        ),
        (
            "CBC cipher suite",
            format!("{TLS}  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA]\n"),
            "4:19: tls_server_config.cipher_suites[0]: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA is not supported by rustls (no CBC suites); use one of TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            "invented cipher suite",
            format!("{TLS}  cipher_suites:\n    - TLS_FAST\n"),
            "5:7: tls_server_config.cipher_suites[0]: unknown cipher suite \"TLS_FAST\"; use one of TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        ),
        (
            "P-521",
            format!("{TLS}  curve_preferences: [X25519, CurveP521]\n"),
            "4:31: tls_server_config.curve_preferences[1]: CurveP521 is not supported by rustls; use X25519, CurveP256 or CurveP384",
        ),
        (
            "certificate without key",
            "tls_server_config:\n  cert_file: server.pem\n".to_owned(),
            "2:3: tls_server_config: missing one of key_file or key",
        ),
        (
            "key without certificate",
            "tls_server_config:\n  key_file: server.key\n".to_owned(),
            "2:3: tls_server_config: missing one of cert_file or cert",
        ),
        (
            "certificate inline and as a file",
            format!("{TLS}  cert: \"-----BEGIN CERTIFICATE-----\"\n"),
            "4:9: tls_server_config.cert: set only one of cert and cert_file",
        ),
        (
            "client CA without a client auth type",
            format!("{TLS}  client_ca_file: ca.pem\n"),
            "4:19: tls_server_config.client_ca_file: a client CA is set but client_auth_type is NoClientCert; use RequireAndVerifyClientCert",
        ),
        (
            "verified client certificates without a CA",
            format!("{TLS}  client_auth_type: RequireAndVerifyClientCert\n"),
            "4:21: tls_server_config.client_auth_type: RequireAndVerifyClientCert needs client_ca_file (or client_ca)",
        ),
        (
            "client_allowed_sans",
            format!(
                "{TLS}  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.pem\n  client_allowed_sans: [prometheus]\n"
            ),
            "6:24: tls_server_config.client_allowed_sans: not supported by vsphere_backup_exporter; use a client CA of its own",
        ),
        (
            "rate_limit",
            "rate_limit:\n  interval: 1s\n  burst: 5\n".to_owned(),
            "2:3: rate_limit: not supported by vsphere_backup_exporter",
        ),
        (
            "missing certificate file",
            "tls_server_config:\n  cert_file: absent.pem\n  key_file: server.key\n".to_owned(),
            "2:14: tls_server_config.cert_file: cannot read DIR/absent.pem: No such file or directory",
        ),
        (
            "a key file holding a certificate",
            "tls_server_config:\n  cert_file: server.pem\n  key_file: server.pem\n".to_owned(),
            "3:13: tls_server_config.key_file: holds no PEM private key (PKCS#8, PKCS#1 or SEC1)",
        ),
        (
            "a certificate file holding a key",
            "tls_server_config:\n  cert_file: server.key\n  key_file: server.key\n".to_owned(),
            "2:14: tls_server_config.cert_file: holds no PEM certificate",
        ),
        (
            "a key of another certificate",
            "tls_server_config:\n  cert_file: server.pem\n  key_file: other.key\n".to_owned(),
            "3:13: tls_server_config.key_file: does not match the certificate of cert_file DIR/server.pem",
        ),
        (
            "header that cannot be configured",
            "http_server_config:\n  headers:\n    Server: nginx\n".to_owned(),
            "3:5: http_server_config.headers: header \"Server\" cannot be configured; allowed: Strict-Transport-Security, X-Content-Type-Options, X-Frame-Options, X-XSS-Protection, Content-Security-Policy",
        ),
        (
            "header value not allowed",
            "http_server_config:\n  headers:\n    X-Frame-Options: allow\n".to_owned(),
            "3:22: http_server_config.headers.X-Frame-Options: \"allow\" is not one of deny, sameorigin",
        ),
        (
            "not a bcrypt hash",
            "basic_auth_users:\n  alice: hunter2\n".to_owned(),
            "2:10: basic_auth_users.alice: not a bcrypt hash; make one with: htpasswd -nBC 10 \"\" | tr -d ':\\n'",
        ),
        (
            "user name with a colon",
            format!("basic_auth_users:\n  'a:b': '{HASH}'\n"),
            "2:3: basic_auth_users: invalid user name \"a:b\": must be non-empty and without ':'",
        ),
        (
            "hash not a string",
            "basic_auth_users:\n  alice: [1]\n".to_owned(),
            "2:10: basic_auth_users.alice: invalid type: sequence, expected a string",
        ),
        (
            "a list at the top",
            hash_user.replace("basic_auth_users:\n  alice", "- alice"),
            "1:1: invalid type: sequence, expected a mapping with tls_server_config, http_server_config or basic_auth_users",
        ),
    ];
    let dir_text = dir.dir.path().display().to_string();
    for (name, yaml, want) in cases {
        let error = dir
            .load(&yaml)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("{name}: accepted"));
        let want = format!("{}:{}", dir.origin(), want.replace("DIR", &dir_text));
        assert_eq!(error, want, "{name}");
        assert!(
            !error.contains("hunter2") && !error.contains(HASH),
            "{error}"
        );
    }
}

#[test]
fn an_empty_web_config_is_plain_http_without_auth() {
    let dir = Dir::new();
    for yaml in [
        "",
        "# nothing\n",
        "{}\n",
        "tls_server_config: {}\nbasic_auth_users: {}\n",
    ] {
        let config = dir.load(yaml).expect(yaml);
        assert_eq!(config.tls, None, "{yaml}");
        assert!(config.basic_auth_users.is_empty(), "{yaml}");
        assert!(config.headers.is_empty(), "{yaml}");
    }
}

#[test]
fn a_complete_web_config_is_read_with_paths_relative_to_its_file() {
    let dir = Dir::new();
    let yaml = format!(
        "{TLS}  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.pem
  min_version: TLS13
  max_version: TLS13
  cipher_suites: [TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_AES_128_GCM_SHA256]
  prefer_server_cipher_suites: false
  curve_preferences: [CurveP384, X25519]
http_server_config:
  http2: false
  headers:
    X-Content-Type-Options: nosniff
    Strict-Transport-Security: max-age=31536000
    Content-Security-Policy: ''
basic_auth_users:
  alice: '{HASH}'
"
    );
    let config = dir.load(&yaml).expect("good web config");
    let tls = config.tls.expect("tls");
    assert_eq!(tls.cert, Pem::File(dir.dir.path().join("server.pem")));
    assert_eq!(tls.key, Pem::File(dir.dir.path().join("server.key")));
    assert_eq!(
        tls.client_ca,
        Some(Pem::File(dir.dir.path().join("ca.pem")))
    );
    assert_eq!(tls.client_auth, ClientAuth::RequireAndVerifyClientCert);
    assert_eq!(
        (tls.min_version, tls.max_version),
        (TlsVersion::Tls13, TlsVersion::Tls13)
    );
    // TLS 1.3 names are accepted and have no effect, as in Go.
    assert_eq!(
        tls.cipher_suites,
        vec![CipherSuite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384]
    );
    assert!(!tls.prefer_server_cipher_suites);
    assert_eq!(tls.curve_preferences, vec![Curve::P384, Curve::X25519]);
    assert_eq!(tls.files().len(), 3);
    let headers: Vec<(String, String)> = config
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_owned()))
        .collect();
    assert_eq!(
        headers,
        vec![
            (
                "strict-transport-security".to_owned(),
                "max-age=31536000".to_owned()
            ),
            ("x-content-type-options".to_owned(), "nosniff".to_owned()),
        ]
    );
    assert_eq!(
        config.basic_auth_users.keys().collect::<Vec<_>>(),
        vec!["alice"]
    );
    assert_eq!(
        format!("{:?}", config.basic_auth_users),
        "{\"alice\": <secret>}"
    );
}

#[test]
fn inline_certificate_and_key_need_no_files() {
    let dir = Dir::new();
    let read = |name: &str| std::fs::read_to_string(dir.dir.path().join(name)).expect("read");
    let indent = |text: String| text.replace('\n', "\n    ");
    let yaml = format!(
        "tls_server_config:\n  cert: |\n    {}\n  key: |\n    {}\n",
        indent(read("server.pem")),
        indent(read("server.key"))
    );
    let config = dir.load(&yaml).expect("inline PEM");
    let tls = config.tls.expect("tls");
    assert!(matches!(tls.cert, Pem::Inline(_)));
    assert!(tls.files().is_empty());
    assert!(!format!("{tls:?}").contains("PRIVATE KEY"));
}

#[test]
fn a_pasted_htpasswd_line_is_described_never_quoted() {
    // `htpasswd -nB prometheus` prints `prometheus:$2y$…`; pasted as the value of the map, or
    // as a user's value after a colon without a space, the hash would be quoted by serde.
    let cases = [
        (
            format!("basic_auth_users: prometheus:{HASH}\n"),
            "1:19: basic_auth_users: invalid type: string of 71 characters, expected a map",
        ),
        (
            format!("basic_auth_users: {HASH}\n"),
            "1:19: basic_auth_users: invalid type: string of 60 characters, expected a map",
        ),
        (
            format!("prometheus:{HASH}\n"),
            "1:1: invalid type: string of 71 characters, expected a mapping with tls_server_config, http_server_config or basic_auth_users",
        ),
        (
            format!("basic_auth_users:\n  - prometheus:{HASH}\n"),
            "2:3: basic_auth_users: invalid type: sequence, expected a map",
        ),
        (
            format!("tls_server_config: 'x: y {HASH}'\n"),
            "1:20: tls_server_config: invalid type: string of 65 characters, expected a mapping with cert_file, key_file, …",
        ),
        (
            format!("'{HASH}': x\n"),
            "1:1: unknown field of 60 characters, expected one of `tls_server_config`, `http_server_config`, `basic_auth_users`, `rate_limit`",
        ),
    ];
    for (yaml, want) in cases {
        let error = WebConfig::from_yaml(&yaml, "web.yml")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_else(|| format!("{yaml}: accepted"));
        assert_eq!(error, format!("web.yml:{want}"), "{yaml}");
        assert!(!error.contains("$2y$"), "{error}");
    }
}
