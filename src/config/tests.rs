//! Table tests of good and bad configurations, blackbox_exporter style: each bad configuration
//! with the exact error it gets. Files live in `tests/config_cases/`.

use super::*;

/// The fixture directory, relative to the package root (cargo runs tests from there).
const CASES: &str = "tests/config_cases";
/// The inline password used by the bad cases; no error may ever contain it.
const INLINE_SECRET: &str = "hunter2";

fn load_case(yaml: &str) -> Result<Config, ConfigError> {
    Config::from_yaml(yaml, &format!("{CASES}/bad.yml"))
}

#[test]
fn bad_configs_get_exact_errors_naming_key_and_line() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "empty file",
            "",
            "tests/config_cases/bad.yml: the configuration is empty; it needs a vcenters list",
        ),
        (
            "only comments",
            "# nothing yet\n---\n",
            "tests/config_cases/bad.yml: the configuration is empty; it needs a vcenters list",
        ),
        (
            "not YAML",
            "vcenters: [\n",
            "tests/config_cases/bad.yml:2:1: did not find expected node content, while parsing a flow node",
        ),
        (
            "a list at the top",
            "- vc01\n",
            "tests/config_cases/bad.yml:1:1: invalid type: sequence, expected a mapping with a vcenters list",
        ),
        (
            "unknown top-level key",
            "vcenters: []\nscrape_interval: 10s\n",
            "tests/config_cases/bad.yml:2:1: unknown field `scrape_interval`, expected one of `vcenters`, `backup_snapshot_patterns`, `last_backup_sources`, `last_backup_timezone`, `blackout_windows`, `consistency_required_attribute`, `owner_labels`, `events`, `last_backup_event_users`, `report`, `tags_interval`, `tag_labels`, `tag_info_categories`, `backup_policy_categories`",
        ),
        (
            "no vcenters key",
            "backup_snapshot_patterns: []\n",
            "tests/config_cases/bad.yml:1:1: missing field `vcenters`",
        ),
        (
            "empty vcenters list",
            "vcenters: []\n",
            "tests/config_cases/bad.yml:1:11: vcenters: must list at least one vCenter",
        ),
        (
            "unknown vCenter key",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    pasword_file: /x\n",
            "tests/config_cases/bad.yml:5:5: vcenters[0]: unknown field `pasword_file`, expected one of `name`, `url`, `username`, `password_file`, `password_env`, `password`, `tls`, `connect_timeout`, `request_timeout`, `login_retry_interval`, `max_response_size`, `perf_interval`, `perf_window`, `perf_max_query_metrics`, `perf_concurrency`",
        ),
        (
            "perf window under one sample",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    perf_window: 10s\n",
            "tests/config_cases/bad.yml:6:18: vcenters[0].perf_window: must be between 20s (one real-time sample) and 1h (the real-time samples vCenter keeps)",
        ),
        (
            "perf concurrency of zero",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    perf_concurrency: 0\n",
            "tests/config_cases/bad.yml:6:23: vcenters[0].perf_concurrency: must be between 1 and 32",
        ),
        (
            "perf metric cap of zero",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    perf_max_query_metrics: 0\n",
            "tests/config_cases/bad.yml:6:29: vcenters[0].perf_max_query_metrics: must be at least 1",
        ),
        (
            "unknown tls key",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    tls: {verify: false}\n",
            "tests/config_cases/bad.yml:6:11: vcenters[0].tls: unknown field `verify`, expected `ca_file` or `insecure_skip_verify`",
        ),
        (
            "missing url",
            "vcenters:\n  - name: vc01\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:2:5: vcenters[0]: missing field `url`",
        ),
        (
            "key given twice",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    url: https://vc02/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:2:5: vcenters[0]: duplicate field `url`",
        ),
        (
            "name with a space",
            "vcenters:\n  - name: vc 01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:2:11: vcenters[0].name: invalid name \"vc 01\": use only letters, digits, '_', '.' and '-'",
        ),
        (
            "url without scheme",
            "vcenters:\n  - name: vc01\n    url: vc01.example.com/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:3:10: vcenters[0].url: invalid URL: relative URL without a base",
        ),
        (
            "url of another scheme",
            "vcenters:\n  - name: vc01\n    url: ftp://vc01/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:3:10: vcenters[0].url: invalid URL: scheme must be http or https",
        ),
        (
            "url with another path than /sdk",
            "vcenters:\n  - name: vc01\n    url: https://vc01/ui\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:3:10: vcenters[0].url: invalid URL: the path must be /sdk (vCenter's SOAP endpoint), e.g. https://vc01.example.com/sdk",
        ),
        (
            "size with an unknown unit",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    max_response_size: 10MB\n",
            "tests/config_cases/bad.yml:6:24: vcenters[0].max_response_size: invalid size \"10MB\": unknown unit \"MB\" (B, KiB, MiB, GiB)",
        ),
        (
            "zero login retry interval",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    login_retry_interval: 0s\n",
            "tests/config_cases/bad.yml:6:27: vcenters[0].login_retry_interval: invalid duration \"0s\": must be greater than zero",
        ),
        (
            "url holding credentials",
            "vcenters:\n  - name: vc01\n    url: https://root:hunter2@vc01/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:3:10: vcenters[0].url: invalid URL: must not hold credentials; use username and password_file",
        ),
        (
            "duration without unit",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    connect_timeout: 10\n",
            "tests/config_cases/bad.yml:6:22: vcenters[0].connect_timeout: invalid duration \"10\": missing unit (ms, s, m or h)",
        ),
        (
            "duration in days",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    request_timeout: 1d\n",
            "tests/config_cases/bad.yml:6:22: vcenters[0].request_timeout: invalid duration \"1d\": expected a number and a unit (ms, s, m, h), like 10s or 1m30s",
        ),
        (
            "zero duration",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    request_timeout: 0s\n",
            "tests/config_cases/bad.yml:6:22: vcenters[0].request_timeout: invalid duration \"0s\": must be greater than zero",
        ),
        (
            "insecure_skip_verify not a boolean",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    tls:\n      insecure_skip_verify: please\n",
            "tests/config_cases/bad.yml:7:29: vcenters[0].tls.insecure_skip_verify: invalid type: string \"please\", expected a boolean",
        ),
        (
            "empty username",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: \"\"\n    password: hunter2\n",
            "tests/config_cases/bad.yml:4:15: vcenters[0].username: must not be empty",
        ),
        (
            "no credentials",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n",
            "tests/config_cases/bad.yml:2:5: vcenters[0]: no password: set one of password_file, password_env or password",
        ),
        (
            "two credentials",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password_file: secrets/vc01.password\n    password: hunter2\n",
            "tests/config_cases/bad.yml:6:15: vcenters[0].password: set only one of password_file, password_env and password (found password_file, password)",
        ),
        (
            "empty inline password",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: ''\n",
            "tests/config_cases/bad.yml:5:15: vcenters[0].password: must not be empty",
        ),
        (
            "inline password not a string",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: [hunter2]\n",
            "tests/config_cases/bad.yml:5:15: vcenters[0].password: invalid type: sequence, expected a string",
        ),
        (
            "unset environment variable",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password_env: VSPHERE_BACKUP_EXPORTER_TEST_UNSET_7f3a\n",
            "tests/config_cases/bad.yml:5:19: vcenters[0].password_env: environment variable VSPHERE_BACKUP_EXPORTER_TEST_UNSET_7f3a is not set",
        ),
        (
            "missing password file",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password_file: secrets/missing.password\n",
            "tests/config_cases/bad.yml:5:20: vcenters[0].password_file: cannot read tests/config_cases/secrets/missing.password: No such file or directory",
        ),
        (
            "empty password file",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password_file: secrets/empty.password\n",
            "tests/config_cases/bad.yml:5:20: vcenters[0].password_file: tests/config_cases/secrets/empty.password is empty",
        ),
        (
            "missing CA file",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    tls:\n      ca_file: missing.pem\n",
            "tests/config_cases/bad.yml:7:16: vcenters[0].tls.ca_file: cannot read tests/config_cases/missing.pem: No such file or directory",
        ),
        (
            "CA file without a certificate",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    tls:\n      ca_file: not-pem.txt\n",
            "tests/config_cases/bad.yml:7:16: vcenters[0].tls.ca_file: tests/config_cases/not-pem.txt holds no PEM certificate",
        ),
        (
            "duplicate names",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n  - name: vc01\n    url: https://vc02/sdk\n    username: u\n    password: hunter2\n",
            "tests/config_cases/bad.yml:6:11: vcenters[1].name: duplicate name \"vc01\" (also vcenters[0].name)",
        ),
        (
            "bad regex",
            "vcenters:\n  - {name: vc01, url: \"https://vc01/sdk\", username: u, password: hunter2}\nbackup_snapshot_patterns:\n  - {product: veeam, regex: \"(?i)[VEEAM\"}\n",
            "tests/config_cases/bad.yml:4:29: backup_snapshot_patterns[0].regex: invalid regex: unclosed character class",
        ),
        (
            "pattern without product",
            "vcenters:\n  - {name: vc01, url: \"https://vc01/sdk\", username: u, password: hunter2}\nbackup_snapshot_patterns:\n  - {product: \"\", regex: VEEAM}\n",
            "tests/config_cases/bad.yml:4:15: backup_snapshot_patterns[0].product: must not be empty",
        ),
        (
            "unknown pattern key",
            "vcenters:\n  - {name: vc01, url: \"https://vc01/sdk\", username: u, password: hunter2}\nbackup_snapshot_patterns:\n  - {product: veeam, pattern: VEEAM}\n",
            "tests/config_cases/bad.yml:4:22: backup_snapshot_patterns[0]: unknown field `pattern`, expected `product` or `regex`",
        ),
        (
            "two documents",
            "vcenters: []\n---\nvcenters: []\n",
            "tests/config_cases/bad.yml: deserializing from YAML containing more than one document is not supported",
        ),
    ];
    let mut failures = Vec::new();
    for (name, yaml, want) in cases {
        match load_case(yaml) {
            Ok(_) => failures.push(format!("{name}: loaded, want error {want:?}")),
            Err(error) => {
                let got = error.to_string();
                if got != *want {
                    failures.push(format!("{name}:\n   got {got:?}\n  want {want:?}"));
                }
                let debug = format!("{error:?}");
                if got.contains(INLINE_SECRET) || debug.contains(INLINE_SECRET) {
                    failures.push(format!("{name}: the error shows the password: {debug}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn config_error_line_is_the_line_of_the_offending_key() {
    let error = load_case("vcenters:\n  - name: vc01\n    url: ftp://x/sdk\n").err();
    assert_eq!(error.as_ref().and_then(ConfigError::line), Some(3));
}

#[test]
fn load_reports_a_missing_file_by_its_path() {
    let error = Config::load(Path::new("tests/config_cases/no-such-file.yml")).err();
    let text = error.map(|e| e.to_string()).unwrap_or_default();
    assert!(
        text.starts_with(
            "tests/config_cases/no-such-file.yml: cannot read the configuration file: "
        ),
        "{text}"
    );
}

#[test]
fn load_good_file_resolves_relative_paths_and_trims_password_files() {
    let config = Config::load(&Path::new(CASES).join("good.yml")).expect("good.yml loads");
    assert_eq!(config.vcenters.len(), 2);

    let vc01 = config.vcenter("vc01").expect("vc01");
    assert_eq!(vc01.url.as_str(), "https://vc01.example.com/sdk");
    assert_eq!(vc01.username, "svc-monitor@vsphere.local");
    assert_eq!(vc01.password.expose(), "file-secret-1");
    assert_eq!(
        vc01.tls.ca_file.as_deref(),
        Some(Path::new("tests/config_cases/ca.pem"))
    );
    assert!(!vc01.tls.insecure_skip_verify);
    assert_eq!(vc01.connect_timeout, Duration::from_secs(5));
    assert_eq!(vc01.request_timeout, Duration::from_secs(90));

    let vc02 = config.vcenter("vc02.lab-b_2").expect("vc02");
    assert_eq!(vc02.url.as_str(), "http://10.0.0.2:8989/sdk");
    assert_eq!(vc02.password.expose(), "crlf-secret-2");
    assert_eq!(vc02.tls.ca_file, None);
    assert!(vc02.tls.insecure_skip_verify);
    assert_eq!(vc02.connect_timeout, DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(vc02.request_timeout, DEFAULT_REQUEST_TIMEOUT);

    let products: Vec<&str> = config
        .backup_snapshot_patterns
        .iter()
        .map(|p| p.product.as_str())
        .collect();
    assert_eq!(products, ["veeam", "in-house"]);
    assert_eq!(
        config.backup_product("VEEAM BACKUP TEMPORARY SNAPSHOT"),
        "veeam"
    );
    assert_eq!(
        config.backup_product("x VEEAM BACKUP TEMPORARY SNAPSHOT"),
        ""
    );
    assert_eq!(config.backup_product("nightly-42"), "in-house");
    assert_eq!(config.backup_product("RUBRIK-1"), "");
    assert!(config.vcenter("vc03").is_none());
}

fn minimal(extra: &str) -> String {
    format!(
        "vcenters:\n  - name: vc01\n    url: https://vc01.example.com/sdk\n    username: u\n{extra}"
    )
}

fn password_of(extra: &str) -> String {
    let config = load_case(&minimal(extra)).expect("loads");
    config.vcenters[0].password.expose().to_owned()
}

#[test]
fn password_file_loses_exactly_one_trailing_line_ending() {
    let cases = [
        ("secrets/vc01.password", "file-secret-1"),
        ("secrets/crlf.password", "crlf-secret-2"),
        ("secrets/no-newline.password", "no-newline-3"),
        ("secrets/two-newlines.password", "two-lines\n"),
    ];
    for (file, want) in cases {
        assert_eq!(
            password_of(&format!("    password_file: {file}\n")),
            want,
            "{file}"
        );
    }
}

#[test]
fn password_env_and_inline_password_are_read() {
    // Cargo sets CARGO_PKG_NAME for the tests it runs; setting variables would be unsafe.
    let from_env = password_of("    password_env: CARGO_PKG_NAME\n");
    assert_eq!(from_env, env!("CARGO_PKG_NAME"));
    assert_eq!(password_of("    password: 123456\n"), "123456");
    assert_eq!(
        password_of("    password: \"s3cr3t: with # signs\"\n"),
        "s3cr3t: with # signs"
    );
}

#[test]
fn password_env_rejects_empty_and_unset_variables() {
    use std::env::VarError;
    let error = |name, value| password_env(name, value).err().unwrap_or_default();
    assert_eq!(
        error("VC01", Ok(String::new())),
        "environment variable VC01 is empty"
    );
    assert_eq!(
        error("VC01", Err(VarError::NotPresent)),
        "environment variable VC01 is not set"
    );
    assert_eq!(
        error("", Err(VarError::NotPresent)),
        "must name an environment variable"
    );
    let ok = password_env("VC01", Ok("pw".to_owned())).map(|s| s.expose().to_owned());
    assert_eq!(ok.ok().as_deref(), Some("pw"));
}

#[test]
fn a_bare_host_url_gets_sdk_and_sizes_and_intervals_parse() {
    let yaml = "vcenters:\n  - name: vc01\n    url: https://vc01.example.com\n    username: u\n    password: p\n    login_retry_interval: 15m\n    max_response_size: 64MiB\n  - name: vc02\n    url: https://vc02:8443/sdk/\n    username: u\n    password: p\n";
    let config = Config::from_yaml(yaml, "t.yml").unwrap();
    assert_eq!(
        config.vcenters[0].url.as_str(),
        "https://vc01.example.com/sdk"
    );
    assert_eq!(config.vcenters[1].url.as_str(), "https://vc02:8443/sdk");
    assert_eq!(
        config.vcenters[0].login_retry_interval,
        Duration::from_secs(900)
    );
    assert_eq!(config.vcenters[0].max_response_size, 64 << 20);
    assert_eq!(
        config.vcenters[1].login_retry_interval,
        DEFAULT_LOGIN_RETRY_INTERVAL
    );
    assert_eq!(
        config.vcenters[1].max_response_size,
        DEFAULT_MAX_RESPONSE_SIZE
    );
}

#[test]
fn minimal_config_gets_defaults() {
    let config = load_case(&minimal("    password: pw\n")).expect("loads");
    let vc01 = &config.vcenters[0];
    assert_eq!(vc01.connect_timeout, Duration::from_secs(10));
    assert_eq!(vc01.request_timeout, Duration::from_secs(60));
    assert_eq!(vc01.tls.ca_file, None);
    assert!(!vc01.tls.insecure_skip_verify);
    let products: Vec<&str> = config
        .backup_snapshot_patterns
        .iter()
        .map(|p| p.product.as_str())
        .collect();
    assert_eq!(
        products,
        ["veeam", "vcb", "netbackup", "commvault", "rubrik"]
    );
}

#[test]
fn default_backup_patterns_match_case_insensitively_anywhere() {
    let config = load_case(&minimal("    password: pw\n")).expect("loads");
    let cases = [
        ("VEEAM BACKUP TEMPORARY SNAPSHOT", "veeam"),
        ("Veeam Backup Temporary Snapshot (2)", "veeam"),
        ("vm01_vcb-backup_", "vcb"),
        ("NBU_SNAPSHOT vm01 1700000000", "netbackup"),
        ("GX_BACKUP_1234", "commvault"),
        ("rubrik-5f2a", "rubrik"),
        ("before upgrade", ""),
        ("VEEAM", ""),
    ];
    for (snapshot, product) in cases {
        assert_eq!(config.backup_product(snapshot), product, "{snapshot}");
    }
}

#[test]
fn backup_patterns_empty_list_disables_and_null_keeps_defaults() {
    let empty = load_case(&format!(
        "{}backup_snapshot_patterns: []\n",
        minimal("    password: pw\n")
    ));
    let empty = empty.expect("loads");
    assert!(empty.backup_snapshot_patterns.is_empty());
    assert_eq!(empty.backup_product("VEEAM BACKUP TEMPORARY SNAPSHOT"), "");

    let null = load_case(&format!(
        "{}backup_snapshot_patterns:\n",
        minimal("    password: pw\n")
    ));
    assert_eq!(null.expect("loads").backup_snapshot_patterns.len(), 5);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let config = Config::load(&Path::new(CASES).join("good.yml")).expect("good.yml loads");
    let debug = format!("{config:?} {:#?}", config);
    for secret in ["file-secret-1", "crlf-secret-2"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert!(debug.contains("<secret>"));

    let inline = load_case(&minimal("    password: hunter2\n")).expect("loads");
    let debug = format!(
        "{inline:?} {:?} {}",
        inline.vcenters[0].password, inline.vcenters[0].password
    );
    assert!(!debug.contains(INLINE_SECRET), "{debug}");
}

#[test]
fn secrets_never_appear_in_errors_of_a_broken_vcenter() {
    // Every error below is raised with the password already read from its file or inline.
    let broken = [
        "    password: hunter2\n    tls: {ca_file: not-pem.txt}\n",
        "    password: hunter2\n    connect_timeout: soon\n",
        "    password: hunter2\n    password_env: X\n",
        "    password: hunter2\n    passwd: hunter2\n",
        "    password: hunter2\n    password: hunter2\n",
        "    password: {value: hunter2}\n",
        "    password: hunter2\n  - name: vc01\n    url: https://x/sdk\n    username: u\n    password: hunter2\n",
    ];
    for extra in broken {
        let error = load_case(&minimal(extra)).expect_err("fails");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains(INLINE_SECRET), "{shown}");
    }
}

#[test]
fn report_thresholds_default_to_72h_and_6h_and_can_be_set() {
    let config = load_case(&minimal("    password: pw\n")).expect("loads");
    assert_eq!(
        config.report.old_snapshot_age,
        Duration::from_secs(72 * 3600)
    );
    assert_eq!(
        config.report.leftover_backup_age,
        Duration::from_secs(6 * 3600)
    );
    let yaml = minimal(
        "    password: pw\nreport:\n  old_snapshot_age: 168h\n  leftover_backup_age: 90m\n",
    );
    let config = load_case(&yaml).expect("loads");
    assert_eq!(
        config.report.old_snapshot_age,
        Duration::from_secs(168 * 3600)
    );
    assert_eq!(
        config.report.leftover_backup_age,
        Duration::from_secs(90 * 60)
    );
}

#[test]
fn bad_report_keys_get_errors_naming_key_and_line() {
    let cases = [
        (
            "report:\n  old_snapshot_age: 3d\n",
            "tests/config_cases/bad.yml:7:21: report.old_snapshot_age: invalid duration \"3d\": expected a number and a unit (ms, s, m, h), like 10s or 1m30s",
        ),
        (
            "report:\n  leftover_age: 6h\n",
            "tests/config_cases/bad.yml:7:3: report: unknown field `leftover_age`, expected `old_snapshot_age` or `leftover_backup_age`",
        ),
    ];
    for (extra, want) in cases {
        let yaml = minimal(&format!("    password: pw\n{extra}"));
        let error = load_case(&yaml).err().map(|e| e.to_string());
        assert_eq!(error.as_deref(), Some(want), "{extra}");
    }
}

#[test]
fn a_quote_left_open_does_not_print_the_password_it_swallowed() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "the whole file quoted",
            "\"vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n\"",
            "tests/config_cases/bad.yml:1:1: invalid type: string of 75 characters holding YAML (a quote left open?), expected a mapping with a vcenters list",
        ),
        (
            "a quote left open before the password",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: \"u\n    password: hunter2\n    tls: {insecure_skip_verify: \"x\"}\n",
            "tests/config_cases/bad.yml:6:34: did not find expected key, while parsing a block mapping at line 2 column 5",
        ),
        (
            "a flow mapping with a quote left open",
            "{'vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n'",
            "tests/config_cases/bad.yml:1:2: unknown field of 75 characters holding YAML (a quote left open?), expected one of `vcenters`, `backup_snapshot_patterns`, `last_backup_sources`, `last_backup_timezone`, `blackout_windows`, `consistency_required_attribute`, `owner_labels`, `events`, `last_backup_event_users`, `report`, `tags_interval`, `tag_labels`, `tag_info_categories`, `backup_policy_categories`",
        ),
        (
            "a short value is still quoted",
            "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: hunter2\n    tls: {insecure_skip_verify: maybe}\n",
            "tests/config_cases/bad.yml:6:33: vcenters[0].tls.insecure_skip_verify: invalid type: string \"maybe\", expected a boolean",
        ),
    ];
    let mut failures = Vec::new();
    for (name, yaml, want) in cases {
        let got = load_case(yaml)
            .err()
            .map(|e| format!("{e}"))
            .unwrap_or_default();
        if got.contains(INLINE_SECRET) {
            failures.push(format!("{name}: shows the password: {got}"));
        } else if got != *want {
            failures.push(format!("{name}:\n   got {got:?}\n  want {want:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn perf_keys_parse_and_default_to_the_realtime_interval() {
    let yaml = "vcenters:\n  - name: vc01\n    url: https://vc01/sdk\n    username: u\n    password: p\n    perf_interval: 1m\n    perf_window: 5m\n    perf_max_query_metrics: 10\n    perf_concurrency: 8\n  - name: vc02\n    url: https://vc02/sdk\n    username: u\n    password: p\n";
    let config = Config::from_yaml(yaml, "t.yml").unwrap();
    let perf = &config.vcenters[0].perf;
    assert_eq!(perf.interval, Duration::from_secs(60));
    assert_eq!(perf.window, Duration::from_secs(300));
    assert_eq!(perf.max_query_metrics, Some(10));
    assert_eq!(perf.concurrency, 8);
    let defaults = &config.vcenters[1].perf;
    assert_eq!(defaults.interval, Duration::from_secs(20));
    assert_eq!(defaults.window, Duration::from_secs(60));
    assert_eq!(defaults.max_query_metrics, None);
    assert_eq!(defaults.concurrency, 4);
}

#[cfg(unix)]
#[test]
fn a_password_file_readable_by_others_gets_a_warning_naming_file_and_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("vc01.password");
    std::fs::write(&path, "hunter2\n").expect("write");
    let shown = path.display();
    let cases = [
        (0o600, None),
        (0o400, None),
        // The file is of this process's own group (it made it).
        (0o640, None),
        (
            0o644,
            Some(format!(
                "password file {shown} is readable by everyone (mode 644); fix: chmod 600 {shown}"
            )),
        ),
    ];
    for (mode, want) in cases {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        assert_eq!(loose_permissions(&path), want, "{mode:o}");
    }
}

#[cfg(unix)]
#[test]
fn a_group_readable_password_file_warns_only_when_the_group_is_not_the_processs() {
    let own = [65534, 27];
    assert_eq!(readable_by(0o600, 0, &own), None);
    assert_eq!(readable_by(0o640, 65534, &own), None, "the pod's fsGroup");
    assert_eq!(readable_by(0o440, 27, &own), None, "a supplementary group");
    assert_eq!(readable_by(0o640, 100, &own), Some("its group"));
    assert_eq!(readable_by(0o640, 100, &[]), Some("its group"), "no /proc");
    assert_eq!(readable_by(0o604, 65534, &own), Some("everyone"));
}

#[cfg(unix)]
#[test]
fn the_processs_own_groups_include_its_effective_group() {
    use std::os::unix::fs::MetadataExt;
    // A file this process creates gets its effective group.
    let file = tempfile::NamedTempFile::new().expect("tempfile");
    let gid = file.as_file().metadata().expect("metadata").gid();
    assert!(
        own_groups().contains(&gid),
        "{gid} not in {:?}",
        own_groups()
    );
}
