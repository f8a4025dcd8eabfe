//! Any text as the configuration file: loading returns a config or an error naming what is
//! wrong, never panics, and an error never shows the inline password it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vsphere_backup_exporter::config::Config;

/// An inline password the input may contain; no error may echo it.
const SECRET: &str = "fuzz-secret-4f1d";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(error) = Config::from_yaml(text, "fuzz.yml") {
        let shown = format!("{error} {error:?}");
        // Only where the secret is given once, as the password: elsewhere (a name, a URL) an
        // error may rightly quote it.
        if text.matches(SECRET).count() == 1 && text.contains(&format!("password: {SECRET}\n")) {
            assert!(!shown.contains(SECRET), "{shown}");
        }
    }
});
