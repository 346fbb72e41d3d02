//! Reading pprof profiles: `tricolor pprof top`.
//!
//! What: loads a profile (gzip'd or raw `profile.proto`, tricolor's or Go's)
//! and prints its top functions like `go tool pprof -top`: per function the
//! `flat` value (samples whose leaf is the function), `flat%`, the running
//! `sum%`, and `cum` (samples with the function anywhere on the stack, counted
//! once per sample), sorted by flat, then cum, then name.
//!
//! Algorithm: 1. gunzip if the file starts with the gzip magic; 2. decode
//! with the `prost` messages of [`tricolor::profile::proto`]; 3. check every
//! index the profile uses (strings, functions, locations) so that a
//! malformed file gives an error, never a panic; 4. resolve each location to
//! its function names (innermost inlined line first) and sum.

use std::collections::{HashMap, HashSet};
use std::io::Read;

use prost::Message;
use tricolor::profile::proto::Profile;

/// Why a file could not be read as a profile (the message names the file).
#[derive(Debug)]
pub struct ProfileError(pub String);

impl std::fmt::Display for ProfileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ProfileError {}

/// Decodes a profile from the bytes of a file named `name` (for messages).
///
/// ```
/// let mut gz = Vec::new();
/// tricolor::profile::write_heap_profile(&mut gz).unwrap();
/// let p = tricolor_cli::pprof::decode("heap.pb.gz", &gz).unwrap();
/// assert_eq!(p.sample_type.len(), 4);
/// assert!(tricolor_cli::pprof::decode("x", b"hello").is_err());
/// ```
pub fn decode(name: &str, bytes: &[u8]) -> Result<Profile, ProfileError> {
    if bytes.is_empty() {
        return Err(ProfileError(format!(
            "{name}: empty file, not a pprof profile"
        )));
    }
    let raw;
    let data = if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    ProfileError(format!(
                        "{name}: truncated gzip data (the file was cut short)"
                    ))
                } else {
                    ProfileError(format!("{name}: corrupt gzip data: {e}"))
                }
            })?;
        raw = out;
        &raw[..]
    } else {
        bytes
    };
    let p = Profile::decode(data).map_err(|e| {
        ProfileError(format!(
            "{name}: not a pprof profile (neither gzip'd nor valid profile.proto protobuf: {e}; truncated?)"
        ))
    })?;
    check(&p).map_err(|e| ProfileError(format!("{name}: not a valid pprof profile: {e}")))?;
    Ok(p)
}

fn check(p: &Profile) -> Result<(), String> {
    if p.string_table.first().map(String::as_str) != Some("") {
        return Err("its string table does not start with \"\"".into());
    }
    if p.sample_type.is_empty() {
        return Err("no sample types".into());
    }
    let ns = p.string_table.len() as i64;
    let s_ok = |i: i64| (0..ns).contains(&i);
    if !p.sample_type.iter().all(|t| s_ok(t.r#type) && s_ok(t.unit)) {
        return Err("a sample type names a string out of range".into());
    }
    if !p.function.iter().all(|f| s_ok(f.name)) {
        return Err("a function names a string out of range".into());
    }
    let funcs: HashSet<u64> = p.function.iter().map(|f| f.id).collect();
    let locs: HashSet<u64> = p.location.iter().map(|l| l.id).collect();
    for l in &p.location {
        if l.line.iter().any(|x| !funcs.contains(&x.function_id)) {
            return Err(format!("location {} names an unknown function", l.id));
        }
    }
    for s in &p.sample {
        if s.value.len() != p.sample_type.len() {
            return Err(format!(
                "a sample has {} values for {} sample types",
                s.value.len(),
                p.sample_type.len()
            ));
        }
        if s.location_id.iter().any(|id| !locs.contains(id)) {
            return Err("a sample names an unknown location".into());
        }
    }
    if !s_ok(p.default_sample_type) {
        return Err("the default sample type is out of range".into());
    }
    Ok(())
}

/// One row of `top`.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Function name.
    pub name: String,
    /// Samples whose leaf is this function.
    pub flat: i64,
    /// Samples with this function on the stack.
    pub cum: i64,
}

/// The result of [`top`]: the chosen sample type, its unit, the total, rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Top {
    /// The sample type shown.
    pub sample_type: String,
    /// Its unit.
    pub unit: String,
    /// Sum of the sample type over all samples.
    pub total: i64,
    /// Functions, by flat then cum (descending), then name.
    pub rows: Vec<Row>,
}

/// Index of the sample type named `index` (or given as a number); by
/// default the profile's default sample type, else the last one (pprof's
/// rule).
fn sample_index(p: &Profile, index: Option<&str>) -> Result<usize, ProfileError> {
    let s = |i: i64| p.string_table[i as usize].as_str();
    let names: Vec<&str> = p.sample_type.iter().map(|t| s(t.r#type)).collect();
    match index {
        Some(i) => {
            if let Ok(n) = i.parse::<usize>() {
                if n < names.len() {
                    return Ok(n);
                }
            }
            names.iter().position(|&n| n == i).ok_or_else(|| {
                ProfileError(format!(
                    "no sample type {i:?} in this profile (it has: {})",
                    names.join(", ")
                ))
            })
        }
        None => Ok(names
            .iter()
            .position(|&n| p.default_sample_type != 0 && n == s(p.default_sample_type))
            .unwrap_or(names.len() - 1)),
    }
}

/// Computes the `top` table of a (checked) profile.
///
/// ```
/// let mut gz = Vec::new();
/// tricolor::profile::write_heap_profile(&mut gz).unwrap();
/// let p = tricolor_cli::pprof::decode("heap.pb.gz", &gz).unwrap();
/// let t = tricolor_cli::pprof::top(&p, Some("alloc_space")).unwrap();
/// assert_eq!(t.sample_type, "alloc_space");
/// ```
pub fn top(p: &Profile, index: Option<&str>) -> Result<Top, ProfileError> {
    let k = sample_index(p, index)?;
    let s = |i: i64| p.string_table[i as usize].clone();
    let fname: HashMap<u64, String> = p.function.iter().map(|f| (f.id, s(f.name))).collect();
    let loc: HashMap<u64, Vec<String>> = p
        .location
        .iter()
        .map(|l| {
            let names = if l.line.is_empty() {
                vec![format!("{:#x}", l.address)]
            } else {
                l.line
                    .iter()
                    .map(|x| fname[&x.function_id].clone())
                    .collect()
            };
            (l.id, names)
        })
        .collect();
    let mut flat: HashMap<String, i64> = HashMap::new();
    let mut cum: HashMap<String, i64> = HashMap::new();
    let mut total = 0i64;
    for smp in &p.sample {
        let v = smp.value[k];
        if v == 0 {
            continue;
        }
        total += v;
        let frames: Vec<&String> = smp.location_id.iter().flat_map(|id| &loc[id]).collect();
        if let Some(leaf) = frames.first() {
            *flat.entry((*leaf).clone()).or_default() += v;
        }
        let mut seen = HashSet::new();
        for f in frames {
            if seen.insert(f) {
                *cum.entry(f.clone()).or_default() += v;
            }
        }
    }
    let mut rows: Vec<Row> = cum
        .into_iter()
        .map(|(name, cum)| Row {
            flat: flat.get(&name).copied().unwrap_or(0),
            name,
            cum,
        })
        .collect();
    rows.sort_by(|a, b| {
        b.flat
            .cmp(&a.flat)
            .then(b.cum.cmp(&a.cum))
            .then(a.name.cmp(&b.name))
    });
    Ok(Top {
        sample_type: s(p.sample_type[k].r#type),
        unit: s(p.sample_type[k].unit),
        total,
        rows,
    })
}

/// Formats `v` in `unit` as pprof does (bytes as B, kB, MB, GB: powers of 1024).
///
/// ```
/// assert_eq!(tricolor_cli::pprof::format_value(1536, "bytes"), "1.50kB");
/// assert_eq!(tricolor_cli::pprof::format_value(42, "count"), "42");
/// ```
pub fn format_value(v: i64, unit: &str) -> String {
    if unit != "bytes" {
        return v.to_string();
    }
    let a = v.unsigned_abs() as f64;
    let (x, u) = if a >= (1u64 << 30) as f64 {
        (v as f64 / (1u64 << 30) as f64, "GB")
    } else if a >= (1u64 << 20) as f64 {
        (v as f64 / (1u64 << 20) as f64, "MB")
    } else if a >= 1024.0 {
        (v as f64 / 1024.0, "kB")
    } else {
        return format!("{v}B");
    };
    format!("{x:.2}{u}")
}

fn pct(v: i64, total: i64) -> String {
    if total == 0 {
        return "0%".into();
    }
    let p = v as f64 * 100.0 / total as f64;
    if (p - 100.0).abs() < 1e-9 {
        "100%".into()
    } else {
        format!("{p:.2}%")
    }
}

/// Renders a [`Top`] like `go tool pprof -top`, at most `nodecount` rows.
///
/// ```
/// use tricolor_cli::pprof::{render, Row, Top};
/// let t = Top { sample_type: "inuse_space".into(), unit: "bytes".into(), total: 2048,
///               rows: vec![Row { name: "main.f".into(), flat: 2048, cum: 2048 }] };
/// assert!(render(&t, None).contains("2kB"));
/// ```
pub fn render(t: &Top, nodecount: Option<usize>) -> String {
    let f = |v| {
        let s = format_value(v, &t.unit);
        s.replace(".00", "")
    };
    let shown = nodecount.unwrap_or(usize::MAX).min(t.rows.len());
    let shown_sum: i64 = t.rows[..shown].iter().map(|r| r.flat).sum();
    let mut out = format!("Type: {}\n", t.sample_type);
    out.push_str(&format!(
        "Showing nodes accounting for {}, {} of {} total\n",
        f(shown_sum),
        pct(shown_sum, t.total),
        f(t.total)
    ));
    if shown < t.rows.len() {
        out.push_str(&format!(
            "Showing top {shown} nodes out of {}\n",
            t.rows.len()
        ));
    }
    out.push_str(&format!(
        "{:>10} {:>6} {:>6} {:>10} {:>6}\n",
        "flat", "flat%", "sum%", "cum", "cum%"
    ));
    let mut sum = 0;
    for r in &t.rows[..shown] {
        sum += r.flat;
        out.push_str(&format!(
            "{:>10} {:>6} {:>6} {:>10} {:>6}  {}\n",
            f(r.flat),
            pct(r.flat, t.total),
            pct(sum, t.total),
            f(r.cum),
            pct(r.cum, t.total),
            r.name
        ));
    }
    out
}
