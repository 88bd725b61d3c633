//! A cluster file's text, and create flags made of the same bytes, through
//! the parser and the validator: errors are fine, panics are not, and a
//! spec that validates must say what it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mcc_core::model::flags::CreateFlags;
use mcc_core::model::SpecInput;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(input) = SpecInput::from_yaml(text) {
        if let Ok(spec) = input.validate() {
            assert!(spec.nodes < 100_000, "absurd node count accepted");
        }
    }
    // the same text as flag values, one field per line
    let mut lines = text.lines().map(str::to_string);
    let mut next = || lines.next();
    let list = |v: Option<String>| v.map(|s| s.split(',').map(str::to_string).collect()).unwrap_or_default();
    let flags = CreateFlags {
        name: next(),
        image: next(),
        front_end_image: next(),
        working_node_image: next(),
        nodes: next().and_then(|n| n.parse().ok()),
        subnet: next(),
        gateway: next(),
        ips: list(next()),
        domain: next(),
        dns: list(next()),
        dns_search: list(next()),
        add_hosts: list(next()),
        network_driver: next(),
        parent: next(),
        persist: list(next()),
        env: list(next()),
        devices: list(next()),
        ..Default::default()
    };
    let _ = flags.resolve(SpecInput::default());
});
