//! The parser never panics: arbitrary bytes, truncated events and real events
//! with values removed or swapped for other JSON types all give `Ok` or a typed
//! error.

use proptest::prelude::*;
use serde_json::Value;

use hubtriage::finding::parse_event;

const SAMPLE: &str = include_str!("fixtures/neptune2-failed-event.json");

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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_event(&bytes);
    }

    #[test]
    fn truncated_events_never_panic(cut in 0usize..SAMPLE.len()) {
        let _ = parse_event(&SAMPLE.as_bytes()[..cut]);
    }

    #[test]
    fn mutated_real_events_never_panic(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6)) {
        let sample: Value = serde_json::from_str(SAMPLE).unwrap();
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
