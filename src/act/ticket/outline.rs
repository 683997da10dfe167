//! What a ticket says, built once for every system: an [`Outline`] of plain
//! blocks (facts, headings, paragraphs, lists, a link). Each system renders
//! it with one thin function ([`adf`] for Jira Cloud, [`wiki`] for Jira Data
//! Center, [`plain`] for ServiceNow), so every system says the same thing.

use serde_json::{json, Value};

use super::problem::TicketText;
use super::tracker::Record;

/// One block of a ticket's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// `label: value` lines.
    Facts(Vec<(String, String)>),
    Heading(String),
    Paragraph(String),
    /// An unordered list.
    Bullets(Vec<String>),
    /// An ordered list (steps to follow).
    Steps(Vec<String>),
    Link {
        text: String,
        href: String,
    },
}

/// A ticket's text, system-neutral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outline {
    pub blocks: Vec<Block>,
}

impl Outline {
    /// A new ticket's description: where, why it is a ticket, what fails, how
    /// to fix it, the finding, the ticket it follows, and the problem key.
    pub fn ticket(text: &TicketText, problem_key: &str, previous: Option<&Record>) -> Outline {
        let mut blocks = vec![
            Block::Facts(text.facts.clone()),
            Block::Heading("Why this is a ticket".into()),
            Block::Paragraph(text.why.clone()),
            Block::Heading("What fails".into()),
        ];
        if text.fails.is_empty() {
            blocks.push(Block::Paragraph(
                "The live state was not read in detail.".into(),
            ));
        } else {
            blocks.push(Block::Bullets(text.fails.clone()));
        }
        blocks.push(Block::Heading("How to fix".into()));
        blocks.push(Block::Steps(text.fix.clone()));
        blocks.push(Block::Link {
            text: "The finding in the Security Hub console".into(),
            href: text.link.clone(),
        });
        if let Some(old) = previous {
            blocks.push(Block::Paragraph(format!(
                "The problem failed again; this ticket follows {} ({}), which was closed too long ago to reopen.",
                old.key, old.url
            )));
        }
        blocks.push(Block::Paragraph(format!(
            "hubtriage problem key: {problem_key}"
        )));
        Outline { blocks }
    }

    /// A comment: one paragraph per line of `text`.
    pub fn comment(text: &str) -> Outline {
        Outline {
            blocks: text
                .lines()
                .map(|l| Block::Paragraph(l.to_string()))
                .collect(),
        }
    }
}

// ---- Atlassian Document Format (Jira Cloud) ----------------------------------

/// A text node; ADF rejects empty ones.
fn text_node(text: &str) -> Value {
    let text = if text.is_empty() { " " } else { text };
    json!({ "type": "text", "text": text })
}

fn adf_paragraph(text: &str) -> Value {
    json!({ "type": "paragraph", "content": [text_node(text)] })
}

fn adf_list(kind: &str, items: &[String]) -> Value {
    let items: Vec<Value> = items
        .iter()
        .map(|i| json!({ "type": "listItem", "content": [adf_paragraph(i)] }))
        .collect();
    json!({ "type": kind, "content": items })
}

fn adf_facts(facts: &[(String, String)]) -> Value {
    let mut nodes = Vec::new();
    for (i, (k, v)) in facts.iter().enumerate() {
        if i > 0 {
            nodes.push(json!({ "type": "hardBreak" }));
        }
        nodes.push(
            json!({ "type": "text", "text": format!("{k}: "), "marks": [ { "type": "strong" } ] }),
        );
        nodes.push(text_node(if v.is_empty() { "-" } else { v }));
    }
    json!({ "type": "paragraph", "content": nodes })
}

/// The outline as an Atlassian Document Format document.
pub fn adf(o: &Outline) -> Value {
    let content: Vec<Value> = o
        .blocks
        .iter()
        .map(|b| match b {
            Block::Facts(facts) => adf_facts(facts),
            Block::Heading(h) => {
                json!({ "type": "heading", "attrs": { "level": 3 }, "content": [text_node(h)] })
            }
            Block::Paragraph(p) => adf_paragraph(p),
            Block::Bullets(items) => adf_list("bulletList", items),
            Block::Steps(items) => adf_list("orderedList", items),
            Block::Link { text, href } => json!({ "type": "paragraph", "content": [ {
                "type": "text",
                "text": text,
                "marks": [ { "type": "link", "attrs": { "href": href } } ]
            } ] }),
        })
        .collect();
    json!({ "type": "doc", "version": 1, "content": content })
}

// ---- wiki markup (Jira Data Center) ------------------------------------------

/// Keeps text literal in wiki markup: every character that can start a
/// markup effect, link, macro or table is escaped with a backslash (which
/// Jira shows as the character itself).
pub fn wiki_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '[' | ']' | '{' | '}' | '|' | '*' | '_' | '^' | '~' | '!') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Wiki text as Jira shows it: escapes taken off (tests).
#[cfg(test)]
fn wiki_unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The outline as Jira wiki markup.
pub fn wiki(o: &Outline) -> String {
    let mut parts = Vec::new();
    for b in &o.blocks {
        parts.push(match b {
            Block::Facts(facts) => facts
                .iter()
                .map(|(k, v)| format!("*{k}:* {}", wiki_escape(v)))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Heading(h) => format!("h3. {}", wiki_escape(h)),
            Block::Paragraph(p) => wiki_escape(p),
            Block::Bullets(items) => list("* ", items, wiki_escape),
            Block::Steps(items) => list("# ", items, wiki_escape),
            Block::Link { text, href } => format!("[{}|{href}]", wiki_escape(text)),
        });
    }
    parts.join("\n\n") + "\n"
}

// ---- plain text (ServiceNow) -------------------------------------------------

/// The outline as plain text.
pub fn plain(o: &Outline) -> String {
    let mut parts = Vec::new();
    for b in &o.blocks {
        parts.push(match b {
            Block::Facts(facts) => facts
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Heading(h) => format!("{h}:"),
            Block::Paragraph(p) => p.clone(),
            Block::Bullets(items) => list("- ", items, str::to_string),
            Block::Steps(items) => items
                .iter()
                .enumerate()
                .map(|(i, s)| format!("{}. {s}", i + 1))
                .collect::<Vec<_>>()
                .join("\n"),
            Block::Link { text, href } => format!("{text}: {href}"),
        });
    }
    parts.join("\n\n") + "\n"
}

fn list(marker: &str, items: &[String], text: impl Fn(&str) -> String) -> String {
    items
        .iter()
        .map(|i| format!("{marker}{}", text(i)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ticket_decision;

    fn outline() -> Outline {
        let text = TicketText::new(&ticket_decision("a"), Some("HIGH"));
        Outline::ticket(&text, "hubtriage-0123456789abcdef", None)
    }

    /// Every text of an ADF document, in order.
    fn adf_texts(v: &Value, out: &mut Vec<String>) {
        if v.get("type") == Some(&json!("text")) {
            out.push(v["text"].as_str().unwrap_or_default().to_string());
        }
        for child in v
            .get("content")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            adf_texts(child, out);
        }
    }

    /// The words of a rendering, markup and punctuation aside.
    fn words(text: &str) -> Vec<String> {
        text.split(|c: char| c.is_whitespace() || "*#|[]\\:.;,()\"".contains(c))
            .filter(|w| !w.is_empty() && *w != "-" && *w != "h3" && w.parse::<u32>().is_err())
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn the_three_renderings_say_the_same_thing() {
        let o = outline();
        let mut texts = Vec::new();
        adf_texts(&adf(&o), &mut texts);
        let mut cloud = words(&texts.join(" "));
        let mut wiki_words = words(&wiki_unescape(&wiki(&o)));
        let mut plain_words = words(&plain(&o));
        // The link's address is markup in ADF, text in the others.
        let href = o
            .blocks
            .iter()
            .find_map(|b| match b {
                Block::Link { href, .. } => Some(href.clone()),
                _ => None,
            })
            .unwrap();
        for w in words(&href) {
            let at = plain_words.iter().position(|x| *x == w).unwrap();
            plain_words.remove(at);
            let at = wiki_words.iter().position(|x| *x == w).unwrap();
            wiki_words.remove(at);
        }
        cloud.sort();
        wiki_words.sort();
        plain_words.sort();
        assert_eq!(cloud, plain_words, "Jira Cloud and ServiceNow");
        assert_eq!(wiki_words, plain_words, "Jira Data Center and ServiceNow");
        for needed in [
            "neptune_enable_audit_log",
            "orders-graph",
            "HIGH",
            "prod-needs-change-ticket",
            "hubtriage-0123456789abcdef",
        ] {
            assert!(
                plain_words.iter().any(|w| w.contains(needed)),
                "{needed} missing"
            );
            assert!(
                wiki_unescape(&wiki(&o)).contains(needed),
                "{needed} missing from wiki"
            );
        }
    }

    #[test]
    fn wiki_markup_is_escaped_and_reads_back_as_written() {
        assert_eq!(wiki_escape("[\"audit\"] *x*"), "\\[\"audit\"\\] \\*x\\*");
        assert_eq!(wiki_escape("a {code} | b"), "a \\{code\\} \\| b");
        let text = "neptune_enable_audit_log = 1 in orders-graph";
        assert_eq!(wiki_unescape(&wiki_escape(text)), text);
    }

    #[test]
    fn adf_has_no_empty_text() {
        let mut texts = Vec::new();
        adf_texts(&adf(&Outline::comment("a\n\nb")), &mut texts);
        assert!(texts.iter().all(|t| !t.is_empty()), "{texts:?}");
    }
}
