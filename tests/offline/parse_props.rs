//! The parser never panics: arbitrary bytes, truncated events, real events
//! (ASFF and OCSF) with values removed or swapped for other JSON types, and
//! arbitrary JSON trees put into a real event all give `Ok` or a typed error.
//!
//! This is the parser's fuzz target. `scripts/test.sh` runs it with the
//! default budget (2,000 cases per property); a longer run:
//! `HUBTRIAGE_FUZZ_CASES=200000 cargo test --release --test parse_props`.
//! Inputs are bounded (bytes up to 512, JSON trees of depth 4 and 8 entries
//! per level), so memory stays small whatever the budget.

use proptest::prelude::*;
use serde_json::Value;

use hubtriage::finding::parse_event;

const SAMPLE: &str = include_str!("../fixtures/neptune2-failed-event.json");
/// The new Security Hub's OCSF event: every property runs over both formats.
const SAMPLE_V2: &str = include_str!("../fixtures/neptune2-v2-event.json");

fn sample(v2: bool) -> &'static str {
    if v2 {
        SAMPLE_V2
    } else {
        SAMPLE
    }
}

/// JSON pointers to every value in `v`.
fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(child, p, out);
            }
        }
        _ => {}
    }
}

fn replacement(kind: u8) -> Option<Value> {
    match kind % 8 {
        0 => None, // remove
        1 => Some(Value::Null),
        2 => Some(Value::from(42)),
        3 => Some(Value::from("x")),
        4 => Some(Value::from(true)),
        5 => Some(Value::Array(vec![Value::from(1), Value::Null])),
        6 => Some(serde_json::json!({"unexpected": {"deep": []}})),
        _ => Some(Value::from("")),
    }
}

fn mutate(mut v: Value, edits: &[(usize, u8)]) -> Value {
    for &(index, kind) in edits {
        let mut all = Vec::new();
        pointers(&v, String::new(), &mut all);
        if all.is_empty() {
            break;
        }
        let pointer = all[index % all.len()].clone();
        let (parent, last) = pointer.rsplit_once('/').unwrap();
        let last = last.replace("~1", "/").replace("~0", "~");
        match replacement(kind) {
            Some(new) => {
                if let Some(slot) = v.pointer_mut(&pointer) {
                    *slot = new;
                }
            }
            None => match v.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    map.remove(&last);
                }
                Some(Value::Array(items)) => {
                    if let Ok(i) = last.parse::<usize>() {
                        if i < items.len() {
                            items.remove(i);
                        }
                    }
                }
                _ => {}
            },
        }
    }
    v
}

/// Cases per property: `HUBTRIAGE_FUZZ_CASES`, else 2,000.
fn cases() -> u32 {
    std::env::var("HUBTRIAGE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// Arbitrary JSON of bounded size: scalars, strings with any characters,
/// arrays and objects, nested up to 4 levels.
fn json_tree() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn truncated_events_never_panic(cut in any::<usize>(), v2 in any::<bool>()) {
        let text = sample(v2);
        let _ = parse_event(&text.as_bytes()[..cut % text.len()]);
    }

    #[test]
    fn arbitrary_json_in_any_field_never_panics(at in any::<usize>(), tree in json_tree(), v2 in any::<bool>()) {
        let mut sample: Value = serde_json::from_str(sample(v2)).unwrap();
        let mut paths = Vec::new();
        pointers(&sample, String::new(), &mut paths);
        let path = &paths[at % paths.len()];
        if let Some(slot) = sample.pointer_mut(path) {
            *slot = tree;
        }
        let _ = parse_event(sample.to_string().as_bytes());
    }

    #[test]
    fn mutated_real_events_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6), v2 in any::<bool>()) {
        let sample: Value = serde_json::from_str(sample(v2)).unwrap();
        let mutated = mutate(sample, &edits);
        let _ = parse_event(mutated.to_string().as_bytes());
    }
}

#[test]
fn a_mutation_that_removes_a_required_field_is_an_error_not_a_panic() {
    let sample: Value = serde_json::from_str(SAMPLE).unwrap();
    let mut v = sample.clone();
    v["detail"]["findings"][0]
        .as_object_mut()
        .unwrap()
        .remove("AwsAccountId");
    let err = parse_event(v.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), "detail.findings[0].AwsAccountId: missing");
}

#[test]
fn a_v2_event_missing_its_account_is_an_error_naming_the_ocsf_path() {
    let mut v: Value = serde_json::from_str(SAMPLE_V2).unwrap();
    v["detail"]["findings"][0]["cloud"]
        .as_object_mut()
        .unwrap()
        .remove("account");
    let err = parse_event(v.to_string().as_bytes()).unwrap_err();
    assert_eq!(err.to_string(), "detail.findings[0].cloud.account: missing");
}
