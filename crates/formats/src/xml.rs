//! XML, parsed as a stream: every `<measure>` element is a record, wherever it sits
//! (`<measures><measure …/></measures>` is the usual shape). Fields may be attributes or
//! child elements, and both forms may mix:
//!
//! ```xml
//! <measures>
//!   <measure experiment="device-vibrations" measure="hertz" timestamp="1653040000" value="2.2" host="lab1"/>
//!   <measure>
//!     <experiment>device-vibrations</experiment><measure>hertz</measure>
//!     <timestamp>2022-05-20T09:46:41Z</timestamp><value>2.3</value>
//!     <tag name="host">lab1</tag>
//!   </measure>
//! </measures>
//! ```
//!
//! Other attributes, `<tag name="…">` children and other child elements are tags. Positions
//! count `<measure>` records from 0. A document that is not well-formed ends decoding at the
//! first error (XML cannot be resynchronised safely).

use std::{borrow::Cow, collections::BTreeMap, io::BufRead};

use quick_xml::{
    Reader, XmlVersion,
    escape::{escape, resolve_predefined_entity},
    events::{BytesStart, Event},
};

use crate::{
    Decoded, Position, Record, RecordError, TimeUnit, check_record, parse_value, timestamp,
};

/// A record being read.
#[derive(Default)]
struct Partial {
    fields: BTreeMap<String, String>,
    tags: BTreeMap<String, String>,
    /// The child element being read: its name, its `name` attribute (for `<tag>`), its text.
    child: Option<(String, Option<String>, String)>,
    error: Option<RecordError>,
}

const FIELDS: [&str; 4] = ["experiment", "measure", "timestamp", "value"];

fn attributes(
    element: &BytesStart<'_>,
    position: Position,
) -> Result<Vec<(String, String)>, RecordError> {
    element
        .attributes()
        .map(|attribute| {
            let attribute = attribute.map_err(|err| {
                RecordError::record(position, format!("malformed attribute: {err}"))
            })?;
            let key = attribute.key.as_ref().to_string();
            let value = attribute
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| {
                    RecordError::field(position, &key, format!("malformed value: {err}"))
                })?;
            Ok((key, value.into_owned()))
        })
        .collect()
}

impl Partial {
    fn start(element: &BytesStart<'_>, position: Position) -> Self {
        let mut partial = Partial::default();
        match attributes(element, position) {
            Ok(pairs) => {
                for (key, value) in pairs {
                    partial.set(key, value);
                }
            }
            Err(err) => partial.error = Some(err),
        }
        partial
    }

    fn set(&mut self, key: String, value: String) {
        if FIELDS.contains(&key.as_str()) {
            self.fields.insert(key, value);
        } else {
            self.tags.insert(key, value);
        }
    }

    fn finish(mut self, position: Position, unit: TimeUnit) -> Decoded {
        if let Some(err) = self.error {
            return Err(err);
        }
        let mut take = |field: &str| {
            self.fields
                .remove(field)
                .ok_or_else(|| RecordError::field(position, field, "missing"))
        };
        let experiment = take("experiment")?;
        let measure = take("measure")?;
        let timestamp_ns = timestamp::from_text(&take("timestamp")?, unit)
            .map_err(|reason| RecordError::field(position, "timestamp", reason))?;
        let value = parse_value(&take("value")?, position)?;
        check_record(
            Record {
                experiment: experiment.into(),
                measure: measure.into(),
                timestamp_ns,
                value,
                tags: self.tags,
            },
            position,
        )
    }
}

/// Decodes `<measure>` records, streaming.
pub fn decode<R: BufRead>(reader: R, unit: TimeUnit) -> impl Iterator<Item = Decoded> {
    let mut reader = Reader::from_reader(reader);
    reader.config_mut().trim_text(false);
    let mut buffer = Vec::new();
    let mut index = 0usize;
    let mut current: Option<Partial> = None;
    let mut finished = false;
    std::iter::from_fn(move || {
        while !finished {
            buffer.clear();
            let position = Position::Index(index);
            let event = match reader.read_event_into(&mut buffer) {
                Ok(event) => event,
                Err(err) => {
                    finished = true;
                    let at = reader.error_position();
                    return Some(Err(RecordError::record(
                        position,
                        format!("malformed XML at byte {at}: {err}"),
                    )));
                }
            };
            match event {
                Event::Empty(element)
                    if current.is_none() && element.local_name().as_ref() == "measure" =>
                {
                    index += 1;
                    return Some(Partial::start(&element, position).finish(position, unit));
                }
                Event::Start(element)
                    if current.is_none() && element.local_name().as_ref() == "measure" =>
                {
                    current = Some(Partial::start(&element, position));
                }
                Event::Start(element) => {
                    if let Some(partial) = current.as_mut() {
                        let name = element.local_name().as_ref().to_string();
                        let tag_name = attributes(&element, position).ok().and_then(|pairs| {
                            pairs.into_iter().find(|(k, _)| k == "name").map(|(_, v)| v)
                        });
                        partial.child = Some((name, tag_name, String::new()));
                    }
                }
                Event::Empty(element) => {
                    if let Some(partial) = current.as_mut() {
                        let name = element.local_name().as_ref().to_string();
                        partial.set(name, String::new());
                    }
                }
                Event::Text(text) => {
                    if let Some((_, _, content)) = current.as_mut().and_then(|p| p.child.as_mut()) {
                        content.push_str(&text.xml10_content());
                    }
                }
                Event::CData(data) => {
                    if let Some((_, _, content)) = current.as_mut().and_then(|p| p.child.as_mut()) {
                        content.push_str(&data);
                    }
                }
                Event::GeneralRef(reference) => {
                    let Some(partial) = current.as_mut() else {
                        continue;
                    };
                    let resolved: Option<Cow<'_, str>> = match reference.resolve_char_ref() {
                        Ok(Some(c)) => Some(Cow::Owned(c.to_string())),
                        Ok(None) => resolve_predefined_entity(&reference).map(Cow::Borrowed),
                        Err(_) => None,
                    };
                    match (resolved, partial.child.as_mut()) {
                        (Some(text), Some((_, _, content))) => content.push_str(&text),
                        (Some(_), None) => {}
                        (None, _) => {
                            let name = reference.to_string();
                            partial.error.get_or_insert(RecordError::record(
                                position,
                                format!("unknown entity &{name};"),
                            ));
                        }
                    }
                }
                Event::End(element) => {
                    let Some(partial) = current.as_mut() else {
                        continue;
                    };
                    if let Some((name, tag_name, content)) = partial.child.take() {
                        match (name.as_str(), tag_name) {
                            ("tag", Some(tag_name)) => {
                                partial.tags.insert(tag_name, content);
                            }
                            _ => partial.set(name, content.trim().to_string()),
                        }
                    } else if element.local_name().as_ref() == "measure" {
                        index += 1;
                        return current.take().map(|partial| partial.finish(position, unit));
                    }
                }
                Event::Eof => {
                    finished = true;
                    if current.take().is_some() {
                        return Some(Err(RecordError::record(
                            position,
                            "unexpected end of document inside <measure>",
                        )));
                    }
                }
                _ => {}
            }
        }
        None
    })
}

/// Writes a `<measures>` document, fields as attributes and tags as `<tag name="…">` children.
pub fn encode<W: std::io::Write>(records: &[Record], mut out: W) -> std::io::Result<()> {
    writeln!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<measures>"
    )?;
    for record in records {
        write!(
            out,
            "  <measure experiment=\"{}\" measure=\"{}\" timestamp=\"{}\" value=\"{}\"",
            escape(&*record.experiment),
            escape(&*record.measure),
            timestamp::format_seconds(record.timestamp_ns),
            record.value
        )?;
        if record.tags.is_empty() {
            writeln!(out, "/>")?;
        } else {
            write!(out, ">")?;
            for (key, value) in &record.tags {
                write!(
                    out,
                    "<tag name=\"{}\">{}</tag>",
                    escape(key.as_str()),
                    escape(value.as_str())
                )?;
            }
            writeln!(out, "</measure>")?;
        }
    }
    writeln!(out, "</measures>")
}

#[cfg(test)]
mod tests;
