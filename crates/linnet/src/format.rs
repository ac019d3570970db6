//! How `linnet sub` (and `linnet rr`) print a received message: payload only, `-v`
//! (topic and payload) or a `-F` format string, byte for byte as mosquitto_sub 2.0 prints
//! them, including its quirks (a field width truncates `%p` / `%x`, `%-p` pads with as many
//! blanks as the payload is long, `%j` stops the payload at a NUL byte, `%J` re-prints the
//! payload the way cJSON 1.7 does). Time fields (`%I %j %J %U` and the `@` sequences) are
//! printed in UTC.
//!
//! The engine works on [`FormatMessage`], a small owned view of a received message, so it is
//! tested without a network; `sub_cmd` fills it from `linnet_client::Message`.

use std::time::{SystemTime, UNIX_EPOCH};

/// A v5 PUBLISH property, in the order it arrived (`%j` prints them in that order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Prop {
    PayloadFormat(u8),
    MessageExpiry(u32),
    TopicAlias(u16),
    ResponseTopic(String),
    CorrelationData(Vec<u8>),
    User(String, String),
    SubscriptionId(u32),
    ContentType(String),
}

/// What the formatter needs of a received message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FormatMessage {
    pub(crate) topic: String,
    pub(crate) payload: Vec<u8>,
    pub(crate) qos: u8,
    pub(crate) retain: bool,
    /// Packet identifier; 0 for QoS 0 (mosquitto's `mid`).
    pub(crate) mid: u16,
    /// Empty for MQTT 3.x and for a v5 message without properties.
    pub(crate) properties: Vec<Prop>,
}

impl FormatMessage {
    /// The properties in the order linnet-proto writes them on the wire (and so the order a
    /// message from the linnet broker arrives in).
    pub(crate) fn props_from(p: &linnet_proto::PublishProperties) -> Vec<Prop> {
        let mut out = Vec::new();
        if let Some(v) = p.payload_format_indicator {
            out.push(Prop::PayloadFormat(u8::from(v)));
        }
        if let Some(v) = p.message_expiry_interval {
            out.push(Prop::MessageExpiry(v));
        }
        if let Some(v) = p.topic_alias {
            out.push(Prop::TopicAlias(v.get()));
        }
        if let Some(v) = &p.response_topic {
            out.push(Prop::ResponseTopic(v.as_str().to_owned()));
        }
        if let Some(v) = &p.correlation_data {
            out.push(Prop::CorrelationData(v.to_vec()));
        }
        for (k, v) in &p.user_properties {
            out.push(Prop::User(k.to_string(), v.to_string()));
        }
        for v in &p.subscription_identifiers {
            out.push(Prop::SubscriptionId(v.get()));
        }
        if let Some(v) = &p.content_type {
            out.push(Prop::ContentType(v.to_string()));
        }
        out
    }

    fn find<'a, T>(&'a self, pick: impl Fn(&'a Prop) -> Option<T>) -> Option<T> {
        self.properties.iter().find_map(pick)
    }
}

/// A point in time: seconds and nanoseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Timestamp {
    pub(crate) secs: i64,
    pub(crate) nanos: u32,
}

impl Timestamp {
    pub(crate) fn now() -> Self {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Timestamp {
                secs: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
                nanos: d.subsec_nanos(),
            },
            Err(_) => Timestamp { secs: 0, nanos: 0 },
        }
    }

    fn civil(self) -> Civil {
        Civil::from_unix(self.secs)
    }
}

/// A UTC calendar date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
    /// 0-based day of the year.
    yday: u32,
}

impl Civil {
    fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        const START: [u32; 12] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334];
        let month = month as u32;
        let yday = START[(month - 1) as usize] + day as u32 - 1 + u32::from(leap && month > 2);
        Civil {
            year,
            month,
            day: day as u32,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
            weekday: (days + 4).rem_euclid(7) as u32,
            yday,
        }
    }
}

impl Civil {
    /// ISO 8601 week-based year and week number (`%G`, `%V`).
    fn iso_week(self) -> (i64, u32) {
        fn weeks_in(year: i64) -> i64 {
            let p = |y: i64| {
                (y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)).rem_euclid(7)
            };
            if p(year) == 4 || p(year - 1) == 3 {
                53
            } else {
                52
            }
        }
        let iso_wday = i64::from((self.weekday + 6) % 7) + 1; // Monday = 1
        let week = (i64::from(self.yday) + 1 - iso_wday + 10) / 7;
        if week < 1 {
            (self.year - 1, weeks_in(self.year - 1) as u32)
        } else if week > weeks_in(self.year) {
            (self.year + 1, 1)
        } else {
            (self.year, week as u32)
        }
    }
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// One strftime(3) conversion (`%c` for `c`) in UTC, C locale; unknown ones print as
/// written, like glibc.
fn strftime_one(out: &mut Vec<u8>, conv: u8, t: Timestamp) {
    let c = t.civil();
    let s = match conv {
        b'Y' => c.year.to_string(),
        b'C' => format!("{:02}", c.year.div_euclid(100)),
        b'y' => format!("{:02}", c.year.rem_euclid(100)),
        b'G' => c.iso_week().0.to_string(),
        b'g' => format!("{:02}", c.iso_week().0.rem_euclid(100)),
        b'V' => format!("{:02}", c.iso_week().1),
        b'U' => format!("{:02}", (c.yday + 7 - c.weekday) / 7),
        b'W' => format!("{:02}", (c.yday + 7 - (c.weekday + 6) % 7) / 7),
        // glibc: an incomplete conversion is copied as written, padded to its width.
        d @ b'1'..=b'9' => format!(
            "{:>w$}",
            format!("%{}", char::from(d)),
            w = usize::from(d - b'0')
        ),
        b'm' => format!("{:02}", c.month),
        b'd' => format!("{:02}", c.day),
        b'e' => format!("{:2}", c.day),
        b'H' => format!("{:02}", c.hour),
        b'k' => format!("{:2}", c.hour),
        b'I' => format!("{:02}", (c.hour + 11) % 12 + 1),
        b'l' => format!("{:2}", (c.hour + 11) % 12 + 1),
        b'M' => format!("{:02}", c.minute),
        b'S' => format!("{:02}", c.second),
        b'p' => (if c.hour < 12 { "AM" } else { "PM" }).to_owned(),
        b'P' => (if c.hour < 12 { "am" } else { "pm" }).to_owned(),
        b'j' => format!("{:03}", c.yday + 1),
        b'a' => DAYS[c.weekday as usize][..3].to_owned(),
        b'A' => DAYS[c.weekday as usize].to_owned(),
        b'b' | b'h' => MONTHS[(c.month - 1) as usize][..3].to_owned(),
        b'B' => MONTHS[(c.month - 1) as usize].to_owned(),
        b'u' => (if c.weekday == 0 { 7 } else { c.weekday }).to_string(),
        b'w' => c.weekday.to_string(),
        b's' => t.secs.to_string(),
        b'z' => "+0000".to_owned(),
        b'Z' => "UTC".to_owned(),
        b'n' => "\n".to_owned(),
        b't' => "\t".to_owned(),
        b'%' => "%".to_owned(),
        b'F' => format!("{}-{:02}-{:02}", c.year, c.month, c.day),
        b'D' => format!("{:02}/{:02}/{:02}", c.month, c.day, c.year.rem_euclid(100)),
        b'T' => format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second),
        b'R' => format!("{:02}:{:02}", c.hour, c.minute),
        b'r' => format!(
            "{:02}:{:02}:{:02} {}",
            (c.hour + 11) % 12 + 1,
            c.minute,
            c.second,
            if c.hour < 12 { "AM" } else { "PM" }
        ),
        b'c' => format!(
            "{} {} {:2} {:02}:{:02}:{:02} {}",
            &DAYS[c.weekday as usize][..3],
            &MONTHS[(c.month - 1) as usize][..3],
            c.day,
            c.hour,
            c.minute,
            c.second,
            c.year
        ),
        b'x' => format!("{:02}/{:02}/{:02}", c.month, c.day, c.year.rem_euclid(100)),
        b'X' => format!("{:02}:{:02}:{:02}", c.hour, c.minute, c.second),
        other => {
            out.push(b'%');
            out.push(other);
            return;
        }
    };
    out.extend_from_slice(s.as_bytes());
}

/// `2016-08-10T09:47:38+0000` (`%I`).
fn iso8601(t: Timestamp) -> String {
    let c = t.civil();
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}+0000",
        c.year, c.month, c.day, c.hour, c.minute, c.second
    )
}

/// The `tst` of `%j` / `%J` as mosquitto_sub 2.0.11 writes it:
/// `2020-05-06T22:12:00.000000Z+0000` (microseconds; the `Z` is Mosquitto's).
fn json_timestamp(t: Timestamp) -> String {
    let c = t.civil();
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z+0000",
        c.year,
        c.month,
        c.day,
        c.hour,
        c.minute,
        c.second,
        t.nanos / 1000
    )
}

/// How received messages are printed (`-F`, `-v`, `-N`, `--pretty`).
#[derive(Clone, Debug, Default)]
pub(crate) struct Output {
    /// `-F`: overrides `verbose`.
    pub(crate) format: Option<Vec<u8>>,
    /// `-v`: `topic payload`.
    pub(crate) verbose: bool,
    /// End each message with a newline (`-N` turns it off).
    pub(crate) eol: bool,
    /// `--pretty`: `%j` / `%J` as indented JSON.
    pub(crate) pretty: bool,
}

impl Output {
    /// Appends the message as printed to `out`; complaints (a `%J` payload that is not JSON)
    /// go to `errors`, one line each, without the newline.
    pub(crate) fn render(
        &self,
        msg: &FormatMessage,
        now: Timestamp,
        out: &mut Vec<u8>,
        errors: &mut Vec<String>,
    ) {
        if let Some(format) = &self.format {
            formatted(format, msg, now, self.pretty, out, errors);
            if self.eol {
                out.push(b'\n');
            }
        } else if self.verbose {
            if msg.payload.is_empty() {
                if self.eol {
                    out.extend_from_slice(msg.topic.as_bytes());
                    out.extend_from_slice(b" (null)\n");
                }
            } else {
                out.extend_from_slice(msg.topic.as_bytes());
                out.push(b' ');
                out.extend_from_slice(&msg.payload);
                if self.eol {
                    out.push(b'\n');
                }
            }
        } else if !msg.payload.is_empty() {
            out.extend_from_slice(&msg.payload);
            if self.eol {
                out.push(b'\n');
            }
        }
    }
}

/// Checks a `-F` string the way mosquitto_sub does before connecting: every `%` sequence
/// must end in a known conversion, every `\` in a known escape, and neither `%`, `@` nor `\`
/// may end the string.
pub(crate) fn validate(f: &[u8]) -> Result<(), String> {
    const CONVERSIONS: &[u8] = b"%ACDEFIlmPpqRSrtjJUxX";
    const ESCAPES: &[u8] = b"\\0aenrtv";
    let incomplete = || Err("incomplete format specifier at the end".to_owned());
    let len = f.len();
    let mut i = 0;
    while i < len {
        match f[i] {
            b'%' => {
                if i + 1 == len {
                    return incomplete();
                }
                if f[i + 1] == b'0' || f[i + 1] == b'-' {
                    i += 1;
                    if i + 1 == len {
                        return incomplete();
                    }
                }
                while f[i + 1].is_ascii_digit() {
                    i += 1;
                    if i + 1 == len {
                        return incomplete();
                    }
                }
                if f[i + 1] == b'.' {
                    i += 1;
                    if i + 1 == len {
                        return incomplete();
                    }
                    while f[i + 1].is_ascii_digit() {
                        i += 1;
                        if i + 1 == len {
                            return incomplete();
                        }
                    }
                }
                if !CONVERSIONS.contains(&f[i + 1]) {
                    return Err(format!(
                        "invalid format specifier '{}'",
                        char::from(f[i + 1]).escape_default()
                    ));
                }
                i += 1;
            }
            b'@' => {
                if i + 1 == len {
                    return incomplete();
                }
                i += 1;
            }
            b'\\' => {
                if i + 1 == len {
                    return Err("incomplete escape at the end".to_owned());
                }
                if !ESCAPES.contains(&f[i + 1]) {
                    return Err(format!(
                        "invalid escape '\\{}'",
                        char::from(f[i + 1]).escape_default()
                    ));
                }
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The options between `%` and the conversion character.
#[derive(Clone, Copy, Debug)]
struct Spec {
    left: bool,
    pad: u8,
    width: usize,
    precision: Option<usize>,
}

fn formatted(
    f: &[u8],
    msg: &FormatMessage,
    now: Timestamp,
    pretty: bool,
    out: &mut Vec<u8>,
    errors: &mut Vec<String>,
) {
    let len = f.len();
    let mut i = 0;
    while i < len {
        match f[i] {
            b'%' => {
                // The same scan as mosquitto_sub's, so odd strings ("%5" at the end, "%-")
                // print what Mosquitto prints.
                let mut spec = Spec {
                    left: false,
                    pad: b' ',
                    width: 0,
                    precision: None,
                };
                if i + 1 < len {
                    i += 1;
                    if f[i] == b'-' {
                        spec.left = true;
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    if f[i] == b'0' {
                        spec.pad = b'0';
                        if i + 1 < len {
                            i += 1;
                        }
                    }
                    while i + 1 < len && f[i].is_ascii_digit() {
                        spec.width = spec
                            .width
                            .saturating_mul(10)
                            .saturating_add(usize::from(f[i] - b'0'));
                        i += 1;
                    }
                    if f[i] == b'.' && i + 1 < len {
                        i += 1;
                        let mut p = 0usize;
                        while i + 1 < len && f[i].is_ascii_digit() {
                            p = p
                                .saturating_mul(10)
                                .saturating_add(usize::from(f[i] - b'0'));
                            i += 1;
                        }
                        spec.precision = Some(p);
                    }
                    percent(f[i], spec, msg, now, pretty, out, errors);
                }
            }
            b'@' => {
                if i + 1 < len {
                    i += 1;
                    match f[i] {
                        b'@' => out.push(b'@'),
                        b'N' => out.extend_from_slice(format!("{:09}", now.nanos).as_bytes()),
                        conv => strftime_one(out, conv, now),
                    }
                }
            }
            b'\\' => {
                if i + 1 < len {
                    i += 1;
                    let c = match f[i] {
                        b'\\' => Some(b'\\'),
                        b'0' => Some(0),
                        b'a' => Some(0x07),
                        b'e' => Some(0x1b),
                        b'n' => Some(b'\n'),
                        b'r' => Some(b'\r'),
                        b't' => Some(b'\t'),
                        b'v' => Some(0x0b),
                        _ => None,
                    };
                    out.extend(c);
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
}

fn percent(
    conv: u8,
    spec: Spec,
    msg: &FormatMessage,
    now: Timestamp,
    pretty: bool,
    out: &mut Vec<u8>,
    errors: &mut Vec<String>,
) {
    match conv {
        b'%' => out.push(b'%'),
        b'A' => match msg.find(|p| match p {
            Prop::TopicAlias(v) => Some(*v),
            _ => None,
        }) {
            Some(v) => int(out, i64::from(v), spec),
            None => blank(out, spec.pad, spec.width),
        },
        b'C' => match msg.find(|p| match p {
            Prop::ContentType(v) => Some(v.as_bytes()),
            _ => None,
        }) {
            Some(v) => string(out, v, spec),
            None => blank(out, b' ', spec.width),
        },
        b'D' => {
            if let Some(v) = msg.find(|p| match p {
                Prop::CorrelationData(v) => Some(v.as_slice()),
                _ => None,
            }) {
                out.extend_from_slice(v);
            }
        }
        b'E' => match msg.find(|p| match p {
            // Mosquitto prints it as a C int.
            Prop::MessageExpiry(v) => Some(*v as i32),
            _ => None,
        }) {
            Some(v) => int(out, i64::from(v), spec),
            None => blank(out, spec.pad, spec.width),
        },
        b'F' => match msg.find(|p| match p {
            Prop::PayloadFormat(v) => Some(*v),
            _ => None,
        }) {
            Some(v) => int(out, i64::from(v), spec),
            None => blank(out, spec.pad, spec.width),
        },
        b'I' => string(out, iso8601(now).as_bytes(), spec),
        b'j' => {
            json_message(msg, now, true, pretty, out);
        }
        b'J' => {
            let mut buf = Vec::new();
            if json_message(msg, now, false, pretty, &mut buf) {
                out.extend_from_slice(&buf);
            } else {
                errors.push(format!(
                    "Error: Message payload is not valid JSON on topic {}.",
                    msg.topic
                ));
            }
        }
        b'l' => int(out, msg.payload.len() as i64, spec),
        b'm' => int(out, i64::from(msg.mid), spec),
        b'P' => {
            let mut first = true;
            for p in &msg.properties {
                if let Prop::User(k, v) = p {
                    if !first {
                        out.push(b' ');
                    }
                    first = false;
                    out.extend_from_slice(k.as_bytes());
                    out.push(b':');
                    out.extend_from_slice(v.as_bytes());
                }
            }
        }
        b'p' => payload(out, &msg.payload, Hex::No, spec),
        b'q' => out.push(b'0' + msg.qos),
        b'R' => {
            if let Some(v) = msg.find(|p| match p {
                Prop::ResponseTopic(v) => Some(v.as_bytes()),
                _ => None,
            }) {
                string(out, v, spec);
            }
        }
        b'r' => out.push(if msg.retain { b'1' } else { b'0' }),
        b'S' => match msg.find(|p| match p {
            Prop::SubscriptionId(v) => Some(*v as i32),
            _ => None,
        }) {
            Some(v) => int(out, i64::from(v), spec),
            None => blank(out, spec.pad, spec.width),
        },
        b't' => string(out, msg.topic.as_bytes(), spec),
        b'U' => out.extend_from_slice(format!("{}.{:09}", now.secs, now.nanos).as_bytes()),
        b'x' => payload(out, &msg.payload, Hex::Lower, spec),
        b'X' => payload(out, &msg.payload, Hex::Upper, spec),
        _ => {}
    }
}

fn blank(out: &mut Vec<u8>, pad: u8, width: usize) {
    out.resize(out.len() + width, pad);
}

/// printf's `%d`, `%-*d`, `%0*d`, `%*d`.
fn int(out: &mut Vec<u8>, v: i64, spec: Spec) {
    let w = spec.width;
    let s = if w == 0 {
        v.to_string()
    } else if spec.left {
        format!("{v:<w$}")
    } else if spec.pad == b'0' {
        format!("{v:0w$}")
    } else {
        format!("{v:>w$}")
    };
    out.extend_from_slice(s.as_bytes());
}

/// printf's `%*.*s` on bytes.
fn string(out: &mut Vec<u8>, v: &[u8], spec: Spec) {
    let v = match spec.precision {
        Some(p) if p < v.len() => &v[..p],
        _ => v,
    };
    let pad = spec.width.saturating_sub(v.len());
    if !spec.left {
        blank(out, b' ', pad);
    }
    out.extend_from_slice(v);
    if spec.left {
        blank(out, b' ', pad);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hex {
    No,
    Lower,
    Upper,
}

/// mosquitto_sub's `write_payload`: a field width is also a maximum (in hex, half of it in
/// bytes), and a left-aligned field pads with one blank per byte written when no width is
/// given (printf's `%*s` with a negative width).
fn payload(out: &mut Vec<u8>, payload: &[u8], hex: Hex, spec: Spec) {
    let width = spec.width as i64;
    let mut len = payload.len() as i64;
    let padlen;
    if width > 0 {
        len = len.min(width);
        if hex != Hex::No {
            len /= 2;
            padlen = width - len * 2;
        } else {
            padlen = width - len;
        }
    } else {
        padlen = width - len;
    }
    if !spec.left && padlen > 0 {
        blank(out, spec.pad, padlen as usize);
    }
    let bytes = &payload[..len as usize];
    match hex {
        Hex::No => out.extend_from_slice(bytes),
        Hex::Lower => {
            for b in bytes {
                out.extend_from_slice(format!("{b:02x}").as_bytes());
            }
        }
        Hex::Upper => {
            for b in bytes {
                out.extend_from_slice(format!("{b:02X}").as_bytes());
            }
        }
    }
    if spec.left {
        blank(out, b' ', padlen.unsigned_abs() as usize);
    }
}

// ---------------------------------------------------------------------------------------
// JSON, the way mosquitto_sub 2.0 prints it through cJSON 1.7.

/// A JSON value; objects keep their order and duplicate keys, like cJSON.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    Number(f64),
    /// Raw bytes: printed with cJSON's escapes; bytes >= 0x80 pass through.
    String(Vec<u8>),
    Array(Vec<Json>),
    Object(Vec<(Vec<u8>, Json)>),
}

impl Json {
    fn str(s: &[u8]) -> Json {
        // cJSON_CreateString takes a C string: it ends at the first NUL.
        let end = s.iter().position(|&b| b == 0).unwrap_or(s.len());
        Json::String(s[..end].to_vec())
    }

    /// cJSON_Print (`pretty`) or cJSON_PrintUnformatted.
    pub(crate) fn print(&self, pretty: bool, out: &mut Vec<u8>) {
        self.print_at(pretty, 0, out);
    }

    fn print_at(&self, pretty: bool, depth: usize, out: &mut Vec<u8>) {
        match self {
            Json::Null => out.extend_from_slice(b"null"),
            Json::Bool(true) => out.extend_from_slice(b"true"),
            Json::Bool(false) => out.extend_from_slice(b"false"),
            Json::Number(d) => out.extend_from_slice(json_number(*d).as_bytes()),
            Json::String(s) => json_string(s, out),
            Json::Array(items) => {
                out.push(b'[');
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        out.push(b',');
                        if pretty {
                            out.push(b' ');
                        }
                    }
                    item.print_at(pretty, depth + 1, out);
                }
                out.push(b']');
            }
            Json::Object(members) => {
                let depth = depth + 1;
                out.push(b'{');
                if pretty {
                    out.push(b'\n');
                }
                for (n, (key, value)) in members.iter().enumerate() {
                    if pretty {
                        blank(out, b'\t', depth);
                    }
                    json_string(key, out);
                    out.push(b':');
                    if pretty {
                        out.push(b'\t');
                    }
                    value.print_at(pretty, depth, out);
                    if n + 1 < members.len() {
                        out.push(b',');
                    }
                    if pretty {
                        out.push(b'\n');
                    }
                }
                if pretty {
                    blank(out, b'\t', depth - 1);
                }
                out.push(b'}');
            }
        }
    }

    /// cJSON_ParseWithOpts(require_null_terminated): one value, then only whitespace.
    pub(crate) fn parse(input: &[u8]) -> Option<Json> {
        let mut p = Parser { s: input, i: 0 };
        if p.s.starts_with(b"\xEF\xBB\xBF") {
            p.i = 3;
        }
        p.ws();
        let v = p.value(0)?;
        p.ws();
        (p.i == p.s.len()).then_some(v)
    }
}

/// cJSON 1.7.15's print_number: `%1.15g`, or `%1.17g` when that does not read back to
/// within a relative `f64::EPSILON` (cJSON's compare_double: 0.30000000000000004 prints 0.3).
fn json_number(d: f64) -> String {
    if d.is_nan() || d.is_infinite() {
        return "null".to_owned();
    }
    let s = fmt_g(d, 15);
    let close = |back: f64| (back - d).abs() <= back.abs().max(d.abs()) * f64::EPSILON;
    if s.parse::<f64>().is_ok_and(close) {
        s
    } else {
        fmt_g(d, 17)
    }
}

/// C's `%1.<precision>g`.
fn fmt_g(d: f64, precision: usize) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    let p = precision.max(1);
    // Round to p significant digits first; the exponent after rounding decides the style.
    let e_form = format!("{:.*e}", p - 1, d);
    let (mantissa, exp) = e_form.split_once('e').unwrap_or((&e_form, "0"));
    let x: i64 = exp.parse().unwrap_or(0);
    if x < -4 || x >= p as i64 {
        let mantissa = strip_zeros(mantissa);
        let sign = if x < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", x.abs())
    } else {
        let decimals = (p as i64 - 1 - x).max(0) as usize;
        strip_zeros(&format!("{d:.decimals$}")).to_owned()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// cJSON's print_string_ptr.
fn json_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            c if c < 32 => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            c => out.push(c),
        }
    }
    out.push(b'"');
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        // cJSON skips every byte <= 32.
        while self.i < self.s.len() && self.s[self.i] <= 32 {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Option<Json> {
        if depth > 1000 {
            return None;
        }
        let rest = &self.s[self.i..];
        if rest.starts_with(b"null") {
            self.i += 4;
            return Some(Json::Null);
        }
        if rest.starts_with(b"false") {
            self.i += 5;
            return Some(Json::Bool(false));
        }
        if rest.starts_with(b"true") {
            self.i += 4;
            return Some(Json::Bool(true));
        }
        match self.peek()? {
            b'"' => self.string().map(Json::String),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' => self.items(b']', |p| p.value(depth + 1)).map(Json::Array),
            b'{' => self
                .items(b'}', |p| {
                    if p.peek()? != b'"' {
                        return None;
                    }
                    let key = p.string()?;
                    p.ws();
                    if p.peek()? != b':' {
                        return None;
                    }
                    p.i += 1;
                    p.ws();
                    Some((key, p.value(depth + 1)?))
                })
                .map(Json::Object),
            _ => None,
        }
    }

    /// The comma-separated items of an array or object, from its opening byte through
    /// `close`; `item` parses one item, whitespace around it skipped.
    fn items<T>(
        &mut self,
        close: u8,
        mut item: impl FnMut(&mut Self) -> Option<T>,
    ) -> Option<Vec<T>> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(close) {
            self.i += 1;
            return Some(items);
        }
        loop {
            self.ws();
            items.push(item(self)?);
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                c if c == close => {
                    self.i += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    fn number(&mut self) -> Option<Json> {
        let start = self.i;
        let mut end = start;
        while end < self.s.len()
            && matches!(self.s[end], b'0'..=b'9' | b'+' | b'-' | b'e' | b'E' | b'.')
        {
            end += 1;
        }
        // strtod takes the longest prefix that is a number.
        let text = std::str::from_utf8(&self.s[start..end]).ok()?;
        for cut in (1..=text.len()).rev() {
            let candidate = &text[..cut];
            if !candidate.ends_with(['e', 'E', '+', '-']) && candidate.as_bytes()[0] != b'+' {
                if let Ok(v) = candidate.parse::<f64>() {
                    self.i = start + cut;
                    return Some(Json::Number(v));
                }
            }
        }
        None
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = self.s.get(self.i..self.i + 4)?;
        let v = u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    fn string(&mut self) -> Option<Vec<u8>> {
        self.i += 1; // the opening quote
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            match b {
                b'"' => return Some(out),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'u' => {
                            let mut c = self.hex4()?;
                            if (0xDC00..=0xDFFF).contains(&c) {
                                return None;
                            }
                            if (0xD800..=0xDBFF).contains(&c) {
                                if self.s.get(self.i..self.i + 2)? != b"\\u" {
                                    return None;
                                }
                                self.i += 2;
                                let low = self.hex4()?;
                                if !(0xDC00..=0xDFFF).contains(&low) {
                                    return None;
                                }
                                c = 0x10000 + ((c - 0xD800) << 10) + (low - 0xDC00);
                            }
                            let ch = char::from_u32(c)?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return None,
                    }
                }
                other => out.push(other),
            }
        }
    }
}

fn json_properties(msg: &FormatMessage) -> Json {
    let mut members: Vec<(Vec<u8>, Json)> = Vec::new();
    let mut user: Option<usize> = None;
    for p in &msg.properties {
        let (name, value): (&str, Json) = match p {
            Prop::PayloadFormat(v) => ("payload-format-indicator", Json::Number(f64::from(*v))),
            Prop::MessageExpiry(v) => ("message-expiry-interval", Json::Number(f64::from(*v))),
            Prop::ContentType(v) => ("content-type", Json::str(v.as_bytes())),
            Prop::ResponseTopic(v) => ("response-topic", Json::str(v.as_bytes())),
            Prop::CorrelationData(v) => ("correlation-data", Json::str(v)),
            Prop::SubscriptionId(v) => ("subscription-identifier", Json::Number(f64::from(*v))),
            Prop::TopicAlias(v) => ("topic-alias", Json::Number(f64::from(*v))),
            Prop::User(k, v) => {
                let index = *user.get_or_insert_with(|| {
                    members.push((b"user-properties".to_vec(), Json::Object(Vec::new())));
                    members.len() - 1
                });
                if let Json::Object(pairs) = &mut members[index].1 {
                    pairs.push((k.as_bytes().to_vec(), Json::str(v.as_bytes())));
                }
                continue;
            }
        };
        members.push((name.as_bytes().to_vec(), value));
    }
    Json::Object(members)
}

/// `%j` (`escaped`) or `%J`; false when `%J`'s payload is not JSON (nothing written).
fn json_message(
    msg: &FormatMessage,
    now: Timestamp,
    escaped: bool,
    pretty: bool,
    out: &mut Vec<u8>,
) -> bool {
    let mut members = vec![
        (
            b"tst".to_vec(),
            Json::String(json_timestamp(now).into_bytes()),
        ),
        (b"topic".to_vec(), Json::str(msg.topic.as_bytes())),
        (b"qos".to_vec(), Json::Number(f64::from(msg.qos))),
        (
            b"retain".to_vec(),
            Json::Number(f64::from(u8::from(msg.retain))),
        ),
        (
            b"payloadlen".to_vec(),
            Json::Number(msg.payload.len() as f64),
        ),
    ];
    if msg.qos > 0 {
        members.push((b"mid".to_vec(), Json::Number(f64::from(msg.mid))));
    }
    if !msg.properties.is_empty() {
        members.push((b"properties".to_vec(), json_properties(msg)));
    }
    let payload = if msg.payload.is_empty() {
        Json::Null
    } else if escaped {
        Json::str(&msg.payload)
    } else {
        match Json::parse(&msg.payload) {
            Some(v) => v,
            None => return false,
        }
    };
    members.push((b"payload".to_vec(), payload));
    Json::Object(members).print(pretty, out);
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> FormatMessage {
        FormatMessage {
            topic: "a/b".into(),
            payload: b"hello".to_vec(),
            qos: 1,
            retain: true,
            mid: 7,
            properties: Vec::new(),
        }
    }

    // 2020-05-06T22:12:00.123456789Z
    const T: Timestamp = Timestamp {
        secs: 1_588_803_120,
        nanos: 123_456_789,
    };

    fn fmt(f: &str, m: &FormatMessage) -> String {
        let out = Output {
            format: Some(f.as_bytes().to_vec()),
            verbose: false,
            eol: false,
            pretty: false,
        };
        let mut buf = Vec::new();
        let mut errors = Vec::new();
        out.render(m, T, &mut buf, &mut errors);
        String::from_utf8_lossy(&buf).into_owned()
    }

    #[test]
    fn plain_fields() {
        let m = msg();
        assert_eq!(
            fmt("%t %p %q %r %l %m %x %X %%", &m),
            "a/b hello 1 1 5 7 68656c6c6f 68656C6C6F %"
        );
    }

    #[test]
    fn width_precision_and_flags() {
        let m = msg();
        assert_eq!(
            fmt("[%6t][%-6t][%.1t][%5.2t][%-5.2t]", &m),
            "[   a/b][a/b   ][a][   a/][a/   ]"
        );
        assert_eq!(
            fmt("[%05l][%-05l][%5m][%-3m|]", &m),
            "[00005][5    ][    7][7  |]"
        );
        // The width caps the payload; hex halves the byte count.
        assert_eq!(
            fmt("[%3p][%8p][%08p][%-8p]", &m),
            "[hel][   hello][000hello][hello   ]"
        );
        assert_eq!(
            fmt("[%5x][%12x][%-p][%-x]", &m),
            "[ 6865][        6865][hello     ][68656c6c6f     ]"
        );
        // q and r ignore widths.
        assert_eq!(fmt("[%3q][%3r]", &m), "[1][1]");
    }

    #[test]
    fn odd_format_strings() {
        let m = msg();
        assert_eq!(fmt("%", &m), "");
        assert_eq!(fmt("x%5", &m), "x");
        assert_eq!(fmt("%-", &m), "");
        // "%." takes the next character as its conversion.
        assert_eq!(fmt("%z|%.|", &m), "|");
        assert_eq!(fmt("\\", &m), "");
        assert_eq!(fmt("\\q|@", &m), "|");
    }

    #[test]
    fn validation_like_mosquitto() {
        for good in [
            "%t %p",
            "%-05l|%10.4t|%.2C|%%|@Y@@@N|\\n\\0\\\\",
            "%j%J%U%I%A%D%E%F%P%R%S%x%X%q%r%m",
            "",
        ] {
            assert_eq!(validate(good.as_bytes()), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("%z", "invalid format specifier 'z'"),
            ("x%", "incomplete"),
            ("%5", "incomplete"),
            ("%-", "incomplete"),
            ("%.", "incomplete"),
            ("%.3", "incomplete"),
            ("@", "incomplete"),
            ("\\q", "invalid escape '\\q'"),
            ("a\\", "incomplete escape"),
            ("%--t", "invalid format specifier '-'"),
        ] {
            let err = validate(bad.as_bytes()).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn escapes() {
        let m = msg();
        assert_eq!(
            fmt("\\n\\t\\0\\e\\\\\\a\\r\\v", &m),
            "\n\t\0\x1b\\\x07\r\x0b"
        );
    }

    #[test]
    fn v5_properties() {
        let mut m = msg();
        assert_eq!(
            fmt(
                "[%A][%3A][%C][%3C][%D][%E][%03E][%F][%P][%R][%3R][%S][%2S]",
                &m
            ),
            "[][   ][][   ][][][000][][][][][][  ]"
        );
        m.properties = vec![
            Prop::PayloadFormat(1),
            Prop::MessageExpiry(60),
            Prop::TopicAlias(3),
            Prop::ResponseTopic("re/ply".into()),
            Prop::CorrelationData(b"c\x01d".to_vec()),
            Prop::User("k".into(), "v".into()),
            Prop::User("k".into(), "w".into()),
            Prop::SubscriptionId(9),
            Prop::SubscriptionId(10),
            Prop::ContentType("text/plain".into()),
        ];
        assert_eq!(
            fmt("[%A][%C][%.4C][%D][%E][%F][%P][%R][%8R][%S][%03S]", &m),
            "[3][text/plain][text][c\u{1}d][60][1][k:v k:w][re/ply][  re/ply][9][009]"
        );
        m.properties = vec![Prop::MessageExpiry(u32::MAX)];
        assert_eq!(fmt("%E", &m), "-1");
    }

    #[test]
    fn time_fields() {
        let m = msg();
        assert_eq!(fmt("%I", &m), "2020-05-06T22:12:00+0000");
        assert_eq!(fmt("%U", &m), "1588803120.123456789");
        assert_eq!(
            fmt("@Y-@m-@d @H:@M:@S.@N @z @s @@ @F @T @j @a @b", &m),
            "2020-05-06 22:12:00.123456789 +0000 1588803120 @ 2020-05-06 22:12:00 127 Wed May"
        );
        assert_eq!(Civil::from_unix(0).year, 1970);
        let c = Civil::from_unix(951_782_400); // 2000-02-29
        assert_eq!((c.year, c.month, c.day, c.weekday), (2000, 2, 29, 2));
        // ISO weeks and week numbers around new year.
        let at = |secs: i64, f: &str| {
            let mut m = msg();
            m.payload.clear();
            let out = Output {
                format: Some(f.as_bytes().to_vec()),
                verbose: false,
                eol: false,
                pretty: false,
            };
            let mut buf = Vec::new();
            out.render(&m, Timestamp { secs, nanos: 0 }, &mut buf, &mut Vec::new());
            String::from_utf8(buf).unwrap()
        };
        assert_eq!(
            at(1_609_459_200, "@F @G @g @V @U @W @u"),
            "2021-01-01 2020 20 53 00 00 5"
        ); // Friday
        assert_eq!(at(1_230_768_000, "@F @G @V"), "2009-01-01 2009 01"); // Thursday
        assert_eq!(at(1_609_200_000, "@F @G @V"), "2020-12-29 2020 53");
        assert_eq!(
            at(1_577_836_800 - 86_400, "@F @G @V @U @W"),
            "2019-12-31 2020 01 52 52"
        );
        assert_eq!(
            at(0, "[@3][@9][@1][@0][@_]"),
            "[ %3][       %9][%1][%0][%_]"
        );
        let c = Civil::from_unix(-1);
        assert_eq!((c.year, c.month, c.day, c.hour), (1969, 12, 31, 23));
    }

    #[test]
    fn json_escaped() {
        let mut m = msg();
        m.payload = b"he\"l\\lo\n\x01\xc3\xa9\0tail".to_vec();
        assert_eq!(
            fmt("%j", &m),
            r#"{"tst":"2020-05-06T22:12:00.123456Z+0000","topic":"a/b","qos":1,"retain":1,"payloadlen":16,"mid":7,"payload":"he\"l\\lo\n\u0001é"}"#
        );
        m.qos = 0;
        m.payload.clear();
        m.properties = vec![
            Prop::User("a".into(), "1".into()),
            Prop::CorrelationData(b"cd".to_vec()),
            Prop::User("b".into(), "2".into()),
            Prop::SubscriptionId(4),
        ];
        assert_eq!(
            fmt("%j", &m),
            r#"{"tst":"2020-05-06T22:12:00.123456Z+0000","topic":"a/b","qos":0,"retain":1,"payloadlen":0,"properties":{"user-properties":{"a":"1","b":"2"},"correlation-data":"cd","subscription-identifier":4},"payload":null}"#
        );
    }

    #[test]
    fn json_raw_and_pretty() {
        let mut m = msg();
        m.qos = 0;
        m.payload = br#" {"a": [1, 2.50, -0.0, 1e20, 3.14159265358979, 0.1, "x\u00e9\n"], "b": {}, "c": []} "#.to_vec();
        assert_eq!(
            fmt("%J", &m),
            r#"{"tst":"2020-05-06T22:12:00.123456Z+0000","topic":"a/b","qos":0,"retain":1,"payloadlen":84,"payload":{"a":[1,2.5,-0,1e+20,3.14159265358979,0.1,"xé\n"],"b":{},"c":[]}}"#
        );
        let out = Output {
            format: Some(b"%J".to_vec()),
            verbose: false,
            eol: true,
            pretty: true,
        };
        let mut buf = Vec::new();
        let mut errors = Vec::new();
        out.render(&m, T, &mut buf, &mut errors);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "{\n\t\"tst\":\t\"2020-05-06T22:12:00.123456Z+0000\",\n\t\"topic\":\t\"a/b\",\n\t\"qos\":\t0,\n\t\"retain\":\t1,\n\t\"payloadlen\":\t84,\n\t\"payload\":\t{\n\t\t\"a\":\t[1, 2.5, -0, 1e+20, 3.14159265358979, 0.1, \"xé\\n\"],\n\t\t\"b\":\t{\n\t\t},\n\t\t\"c\":\t[]\n\t}\n}\n"
        );
        assert!(errors.is_empty());
        m.payload = b"notjson".to_vec();
        let mut buf = Vec::new();
        out.render(&m, T, &mut buf, &mut errors);
        assert_eq!(buf, b"\n");
        assert_eq!(
            errors,
            ["Error: Message payload is not valid JSON on topic a/b."]
        );
    }

    #[test]
    fn numbers_like_cjson() {
        assert_eq!(json_number(5.0), "5");
        assert_eq!(json_number(-0.0), "-0");
        assert_eq!(json_number(1e20), "1e+20");
        assert_eq!(json_number(123456.0), "123456");
        assert_eq!(json_number(0.0001), "0.0001");
        assert_eq!(json_number(0.00001), "1e-05");
        assert_eq!(json_number(0.1), "0.1");
        assert_eq!(json_number(1.0 / 3.0), "0.33333333333333331");
        assert_eq!(json_number(4_294_967_295.0), "4294967295");
        assert_eq!(json_number(1e15), "1e+15");
        assert_eq!(json_number(0.30000000000000004), "0.3");
        assert_eq!(
            json_number(12345678901234567890.0),
            "1.2345678901234567e+19"
        );
        assert_eq!(json_number(5e-324), "4.94065645841247e-324");
    }

    #[test]
    fn plain_and_verbose() {
        let m = msg();
        let mut out = Output {
            format: None,
            verbose: false,
            eol: true,
            pretty: false,
        };
        let render = |out: &Output, m: &FormatMessage| {
            let mut buf = Vec::new();
            out.render(m, T, &mut buf, &mut Vec::new());
            buf
        };
        assert_eq!(render(&out, &m), b"hello\n");
        let mut empty = m.clone();
        empty.payload.clear();
        assert_eq!(render(&out, &empty), b"");
        out.verbose = true;
        assert_eq!(render(&out, &m), b"a/b hello\n");
        assert_eq!(render(&out, &empty), b"a/b (null)\n");
        out.eol = false;
        assert_eq!(render(&out, &m), b"a/b hello");
        assert_eq!(render(&out, &empty), b"");
    }
}
