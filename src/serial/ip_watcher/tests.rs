//! The watcher on whole consoles: the logs of each firmware family, and what a stream of
//! lines does to the answer. The helpers here serve the stages' tests too.

use super::*;

pub(super) fn ip(text: &str) -> Option<Ipv4Addr> {
    Some(text.parse().expect("test address"))
}

/// The answer after feeding `lines` in order.
pub(super) fn answer(lines: &[&str]) -> BoardAddress {
    let mut watcher = IpWatcher::new();
    for line in lines {
        watcher.line(line);
    }
    watcher.address()
}

pub(super) fn own_ip(lines: &[&str]) -> Option<Ipv4Addr> {
    answer(lines).ip
}

pub(super) fn port(lines: &[&str]) -> Option<u16> {
    answer(lines).port
}

#[test]
fn esp_idf_sta_ip_line_gives_the_address_not_the_mask_or_gateway() {
    let line =
        "I (1523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1";
    assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
    let gateway_first = "I (1523) esp_netif_handlers: gw: 192.168.1.1, sta ip: 192.168.1.42";
    assert_eq!(own_ip(&[gateway_first]), ip("192.168.1.42"));
}

#[test]
fn esp_idf_got_ip_in_its_versions() {
    for line in [
        "I (1523) wifi_station: got ip:192.168.1.42",
        "I (2853) wifi station: got ip:192.168.1.42",
        "I (2463) event: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
        "I (2463) tcpip_adapter: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
        "I (5483) example_connect: Got IPv4 event: Interface \"example_netif_sta\" address: 192.168.1.42",
        "I (5493) example_common: - IPv4 address: 192.168.1.42,",
        "I (12:34:56.789) gateway: got ip: 192.168.1.42",
    ] {
        assert_eq!(own_ip(&[line]), ip("192.168.1.42"), "{line}");
    }
}

#[test]
fn arduino_ip_address_with_the_value_on_the_next_line() {
    assert_eq!(
        own_ip(&["WiFi connected", "IP address: ", "192.168.1.42"]),
        ip("192.168.1.42")
    );
    // A blank (CR-only) line in between does not use the announcement up.
    assert_eq!(
        own_ip(&["IP address: ", "", "192.168.1.42"]),
        ip("192.168.1.42")
    );
    // Only the very next line.
    assert_eq!(
        own_ip(&["IP address: ", "Connecting to broker", "10.0.0.5"]),
        None
    );
}

#[test]
fn arduino_ip_address_on_the_same_line_or_after_wifi_connected() {
    assert_eq!(own_ip(&["IP address:\t192.168.1.42"]), ip("192.168.1.42"));
    assert_eq!(own_ip(&["IP address: 192.168.1.42"]), ip("192.168.1.42"));
    assert_eq!(own_ip(&["Local IP: 192.168.1.42"]), ip("192.168.1.42"));
    assert_eq!(own_ip(&["My IP is 192.168.1.42"]), ip("192.168.1.42"));
    assert_eq!(
        own_ip(&["WiFi connected", "192.168.1.42"]),
        ip("192.168.1.42")
    );
    assert_eq!(
        own_ip(&["Connected to WiFi network MyNet as 192.168.1.42"]),
        ip("192.168.1.42")
    );
    // A bare address with no announcement is anybody's.
    assert_eq!(own_ip(&["hello", "192.168.1.42"]), None);
    // After the dots of a sketch waiting for Wi-Fi, it is what the sketch got.
    for dots in ["..........", ". . . . . ", "...\r"] {
        assert_eq!(
            own_ip(&["Connecting to labnet", dots, "192.168.1.42"]),
            ip("192.168.1.42"),
            "{dots:?}"
        );
    }
    assert_eq!(own_ip(&["..", "192.168.1.42"]), None);
    assert_eq!(own_ip(&["......", "ping 192.168.1.42"]), None);
    assert_eq!(own_ip(&["......", "done", "192.168.1.42"]), None);
    // After `WiFi connected`, only a line that is nothing but the address.
    assert_eq!(own_ip(&["WiFi connected", "ping 8.8.8.8"]), None);
}

#[test]
fn an_announcement_covers_only_a_plain_value_on_the_next_line() {
    assert_eq!(own_ip(&["IP address:", "Gateway: 192.168.1.1"]), None);
    assert_eq!(
        own_ip(&["IP address:", "connecting to 93.184.216.34"]),
        None
    );
    assert_eq!(
        own_ip(&["IP address:", "[C][x:1]:   192.168.1.42"]),
        ip("192.168.1.42")
    );
    assert_eq!(own_ip(&["Gateway IP:", "192.168.1.1"]), None);
    assert_eq!(own_ip(&["client connected", "192.168.1.77"]), None);
    assert_eq!(
        own_ip(&["API Server:", "uptime 5 s", "Address: 10.0.0.5"]),
        None
    );
    assert_eq!(
        own_ip(&["WiFi connected", "'192.168.1.42'"]),
        ip("192.168.1.42")
    );
}

#[test]
fn arduino_core_event_log() {
    let line = "[   524][D][WiFiGeneric.cpp:1098] _eventCallback(): STA IP: 192.168.1.42, MASK: 255.255.255.0, GW: 192.168.1.1";
    assert_eq!(own_ip(&[line]), ip("192.168.1.42"));
}

#[test]
fn micropython_interface_tuples() {
    let ifconfig = "('192.168.1.42', '255.255.255.0', '192.168.1.1', '8.8.8.8')";
    assert_eq!(own_ip(&[ifconfig]), ip("192.168.1.42"));
    let addr4 = "('192.168.1.42', '255.255.255.0')";
    assert_eq!(own_ip(&[addr4]), ip("192.168.1.42"));
    let boot = "network config: ('192.168.1.42', '255.255.255.0', '192.168.1.1', '192.168.1.1')";
    assert_eq!(own_ip(&[boot]), ip("192.168.1.42"));
    let static_echo =
        ">>> wlan.ifconfig(('192.168.1.50', '255.255.255.0', '192.168.1.1', '8.8.8.8'))";
    assert_eq!(own_ip(&[static_echo]), ip("192.168.1.50"));
    assert_eq!(
        own_ip(&[">>> wlan.ifconfig()[0]", "'192.168.1.42'"]),
        ip("192.168.1.42")
    );
}

#[test]
fn nodemcu_getip_and_eventmon() {
    assert_eq!(
        own_ip(&["192.168.1.42\t255.255.255.0\t192.168.1.1"]),
        ip("192.168.1.42")
    );
    assert_eq!(
        own_ip(&[
            "> print(wifi.sta.getip())",
            "192.168.1.42 255.255.255.0 192.168.1.1"
        ]),
        ip("192.168.1.42")
    );
    let eventmon = [
        "STA - GOT IP",
        "\tStation IP: 192.168.1.42",
        "\tSubnet mask: 255.255.255.0",
        "\tGateway IP: 192.168.1.1",
    ];
    assert_eq!(own_ip(&eventmon), ip("192.168.1.42"));
    assert_eq!(
        own_ip(&["Connected, IP is 192.168.1.42"]),
        ip("192.168.1.42")
    );
}

#[test]
fn tasmota_web_server_line_and_status_json() {
    let web =
        "00:00:02.600 HTP: Web server active on tasmota-1A2B3C-2876 with IP address 192.168.1.42";
    assert_eq!(own_ip(&[web]), ip("192.168.1.42"));
    let info2 = r#"00:00:03.130 RSL: INFO2 = {"Info2":{"WebServerMode":"Admin","Hostname":"tasmota-1A2B3C-2876","IPAddress":"192.168.1.42"}}"#;
    assert_eq!(own_ip(&[info2]), ip("192.168.1.42"));
    let version = "00:00:00.100 Project tasmota - Tasmota Version 10.0.0.3(tasmota32)-2_0_14";
    assert_eq!(own_ip(&[version]), None);
    let mqtt = "00:00:05.001 MQT: Connect failed to 192.168.1.10:1883, rc -2. Retry in 10 sec";
    assert_eq!(answer(&[mqtt]), BoardAddress::default());
}

#[test]
fn esphome_blocks() {
    let wifi = [
        "[I][wifi:617]: WiFi Connected!",
        "[C][wifi:428]:   Local MAC: 24:0A:C4:12:34:56",
        "[C][wifi:436]:   IP Address: 192.168.1.42",
        "  Subnet: 255.255.255.0",
        "  Gateway: 192.168.1.1",
        "  DNS1: 192.168.1.1",
        "  DNS2: 0.0.0.0",
    ];
    assert_eq!(own_ip(&wifi), ip("192.168.1.42"));
    let api = [
        "[C][api:139]: API Server:",
        "[C][api:140]:   Address: 192.168.1.43:6053",
    ];
    assert_eq!(
        answer(&api),
        BoardAddress {
            ip: ip("192.168.1.43"),
            port: Some(6053)
        }
    );
    // `Address:` alone, outside such a block, is nobody's.
    assert_eq!(own_ip(&["[C][mqtt:100]:   Address: 10.0.0.5:1883"]), None);
    assert_eq!(own_ip(&["  Address: 10.0.0.5"]), None);
}

#[test]
fn esp_hal_and_embassy_examples() {
    assert_eq!(own_ip(&["Got IP: 192.168.1.42/24"]), ip("192.168.1.42"));
    assert_eq!(
        own_ip(&["INFO - IP address: 192.168.1.42"]),
        ip("192.168.1.42")
    );
    let embassy = "INFO - Got IP: StaticConfigV4 { address: 192.168.1.42/24, gateway: Some(192.168.1.1), dns_servers: [192.168.1.1] }";
    assert_eq!(own_ip(&[embassy]), ip("192.168.1.42"));
    let esp_wifi = "got ip IpInfo { ip: 192.168.1.42, subnet: Subnet { gateway: 192.168.1.1, mask: Mask(24) }, dns: None, secondary_dns: None }";
    assert_eq!(own_ip(&[esp_wifi]), ip("192.168.1.42"));
}

#[test]
fn our_firmware_on_a_real_board() {
    for prefix in ["I (4321) ", "INFO - ", ""] {
        let lines = [
            format!("{prefix}espchat: wifi connecting to \"lab\""),
            format!("{prefix}espchat: got ip: 192.168.1.42"),
            format!("{prefix}espchat: listening on 192.168.1.42:5000"),
            format!("{prefix}espchat: client 1 connected from 192.168.1.77:51234"),
        ];
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        assert_eq!(
            answer(&lines),
            BoardAddress {
                ip: ip("192.168.1.42"),
                port: Some(5000)
            },
            "{prefix}"
        );
    }
}

#[test]
fn the_virtual_board_is_on_loopback() {
    let lines = [
        "I (412) espchat: got ip: 127.0.0.1",
        "I (413) espchat: listening on 127.0.0.1:41234",
    ];
    assert_eq!(
        answer(&lines),
        BoardAddress {
            ip: ip("127.0.0.1"),
            port: Some(41234)
        }
    );
    assert_eq!(
        answer(&["I (413) espchat: listening on 127.0.0.1:41234"]),
        BoardAddress {
            ip: ip("127.0.0.1"),
            port: Some(41234)
        }
    );
}

#[test]
fn the_latest_own_address_wins_and_each_change_is_reported_once() {
    let mut watcher = IpWatcher::new();
    let first = watcher.line(
        "I (1523) esp_netif_handlers: sta ip: 192.168.1.40, mask: 255.255.255.0, gw: 192.168.1.1",
    );
    assert_eq!(first.ip, ip("192.168.1.40"));
    assert_eq!(first.port, None);
    let again = watcher.line("I (1530) wifi_station: got ip:192.168.1.40");
    assert_eq!(again, BoardAddress::default());
    let renewed = watcher.line(
        "I (91523) esp_netif_handlers: sta ip: 192.168.1.42, mask: 255.255.255.0, gw: 192.168.1.1",
    );
    assert_eq!(renewed.ip, ip("192.168.1.42"));
    let port = watcher.line("espchat: listening on 192.168.1.42:5000");
    assert_eq!(
        port,
        BoardAddress {
            ip: None,
            port: Some(5000)
        }
    );
    // A reboot keeps the last answer until a new one is printed.
    watcher.line("ets Jun  8 2016 00:22:57");
    watcher.line("rst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)");
    assert_eq!(watcher.address().ip, ip("192.168.1.42"));
    watcher.line("IP address: 10.0.0.9");
    assert_eq!(
        watcher.address(),
        BoardAddress {
            ip: ip("10.0.0.9"),
            port: Some(5000)
        }
    );
}

#[test]
fn garbage_replacement_characters_and_long_lines_are_harmless() {
    let mut watcher = IpWatcher::new();
    watcher.line("got ip: 192.168.1.42");
    for line in [
        "\u{FFFD}\u{FFFD}\u{FFFD}ip\u{FFFD}1.2.3.4\u{FFFD}",
        "\u{FFFD}p\u{FFFD}\u{FFFD}#\u{FFFD}\u{FFFD}l\u{FFFD}192.168.1.1\u{FFFD}",
        "ÿ\u{FFFD}ets Jun  8 2016 00:22:57 \u{FFFD}rst:0x1",
        "....................",
        "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
        "ip:ip:ip:ip:ip:ip:ip:ip:",
        "[[[[[[[[[[[[0;;;;;;;;;;m",
        "",
    ] {
        assert_eq!(watcher.line(line), BoardAddress::default(), "{line}");
    }
    let long = "ab1.2.3.4.5 ".repeat(16 * 1024 / 12);
    assert_eq!(watcher.line(&long), BoardAddress::default());
    let dots = "1.".repeat(8 * 1024);
    assert_eq!(watcher.line(&dots), BoardAddress::default());
    let many_gateways = "gw: 192.168.1.1 ".repeat(1000);
    assert_eq!(watcher.line(&many_gateways), BoardAddress::default());
    assert_eq!(watcher.address().ip, ip("192.168.1.42"));
    // Even at the end of a very long line, a real announcement is found.
    let mut tail = "x".repeat(16 * 1024);
    tail.push_str(" got ip: 192.168.1.50");
    assert_eq!(watcher.line(&tail).ip, ip("192.168.1.50"));
}

/// Lines of characters that cannot spell any context word never yield an answer, and
/// nothing panics, whatever digits, dots and punctuation they hold.
#[test]
fn random_junk_never_gives_an_answer() {
    const ALPHABET: &[char] = &[
        '0', '1', '2', '5', '9', '.', '.', '.', ':', ',', '-', '/', ' ', ' ', '(', ')', '\'', '"',
        '[', ']', ';', 'm', 'K', 'x', 'z', 'q', '\u{FFFD}', 'é', '\t', '>', '*', '_',
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut watcher = IpWatcher::new();
    for _ in 0..2000 {
        let len = (next() % 120) as usize;
        let line: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        assert_eq!(watcher.line(&line), BoardAddress::default(), "{line:?}");
    }
}

#[test]
fn a_server_ip_is_the_boards_when_its_server_then_waits_for_clients() {
    // Freenove's MicroPython TCP server (seeds/002, project 13.2).
    let server = [
        "tcp waiting...",
        "Server IP: 192.168.1.42 \tPort: 8000",
        "accepting.....",
    ];
    assert_eq!(own_ip(&server), ip("192.168.1.42"));
    assert_eq!(port(&server), Some(8000));
    assert_eq!(
        own_ip(&["TCP server IP: 192.168.1.42", "", "Socket listening"]),
        ip("192.168.1.42")
    );
    // A client names its server the same way; what follows is not a server waiting.
    for lines in [
        &["Server IP: 192.168.1.20", "Connecting...", "Connected"][..],
        &["Server IP: 192.168.1.20", "a", "b", "c", "accepting....."],
        &[
            "Server IP: 192.168.1.20",
            "accepting connection from 192.168.1.7",
        ],
        &["MQTT server IP: 192.168.1.20", "accepting....."],
        &["connecting to server IP 192.168.1.20", "accepting....."],
    ] {
        assert_eq!(own_ip(lines), None, "{lines:?}");
    }
}

#[test]
fn the_boards_own_mdns_name_gives_its_port_where_an_address_would() {
    let near_the_ip = |line| answer(&["IP address: 192.168.1.42", line]);
    for (line, expected) in [
        ("Open http://esp32.local:8080 in a browser", Some(8080)),
        ("listening on esp32.local:3333", Some(3333)),
        ("Ready! Use 'telnet esp32.local:23' to connect", Some(23)),
        ("Server running at esp-lab.local:5000", Some(5000)),
        // Somewhere else, or not a server the board runs.
        ("connecting to broker.local:1883", None),
        ("mDNS: esp32.local:80 announced", None),
        ("Fetching http://ota.local:8000/firmware.bin", None),
        ("udp listening on esp32.local:4210", None),
        ("esp32.local:80", None),
        ("my-esp32.localhost:80", None),
    ] {
        let got = near_the_ip(line);
        assert_eq!(got.ip, ip("192.168.1.42"), "{line}");
        assert_eq!(got.port, expected, "{line}");
    }
    // ESPHome's API server block names the board by its mDNS name as by its address.
    assert_eq!(
        port(&[
            "[C][api:140]: API Server:",
            "[C][api:140]:   Address: kitchen-sensor.local:6053"
        ]),
        Some(6053)
    );
}
