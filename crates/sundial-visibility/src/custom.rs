//! A namespace's custom search attributes. As in Temporal's SQL visibility, each namespace maps
//! its own names (aliases) onto pre-allocated typed slots (`Keyword01`..`Keyword10`, `Int01`..
//! `Int03`, ...), kept in the namespace config's `custom_search_attribute_aliases` (slot ->
//! alias). The slots bound how many attributes of a type a namespace may have, and give
//! Temporal's messages when they run out. Runs store their attributes under the alias.

use std::collections::{BTreeMap, HashMap};

use sundial_proto::api::enums::v1::IndexedValueType;

use crate::attributes::{SaType, custom_attribute_limit, is_reserved, system_attribute};

const SLOT_TYPES: [SaType; 7] = [
    SaType::Bool,
    SaType::Datetime,
    SaType::Double,
    SaType::Int,
    SaType::Keyword,
    SaType::KeywordList,
    SaType::Text,
];

/// The type of a slot name (`Keyword03` is a Keyword), if it is one.
pub fn slot_type(slot: &str) -> Option<SaType> {
    SLOT_TYPES.into_iter().find(|ty| {
        slot.strip_prefix(ty.name())
            .and_then(|number| {
                (number.len() == 2 && number.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| number.parse::<usize>().ok())?
            })
            .is_some_and(|n| (1..=custom_attribute_limit(*ty)).contains(&n))
    })
}

fn slot_name(ty: SaType, number: usize) -> String {
    format!("{}{number:02}", ty.name())
}

/// A namespace's custom attributes (alias -> type), from its config's slot -> alias map.
/// Entries that are not slots or have no alias are skipped.
pub fn custom_attributes(aliases: &HashMap<String, String>) -> HashMap<String, SaType> {
    aliases
        .iter()
        .filter(|(_, alias)| !alias.is_empty())
        .filter_map(|(slot, alias)| Some((alias.clone(), slot_type(slot)?)))
        .collect()
}

/// The checks on an `AddSearchAttributes` request that need no namespace: no system name, no
/// unknown type.
pub fn check_new(requested: &HashMap<String, i32>) -> Result<(), String> {
    let mut names: Vec<(&String, &i32)> = requested.iter().collect();
    names.sort();
    for (name, ty) in names {
        if is_reserved(name) {
            return Err(format!("Search attribute {name} is reserved by system."));
        }
        if IndexedValueType::try_from(*ty).is_err() {
            return Err(format!("Unknown search attribute type: {ty}."));
        }
    }
    Ok(())
}

/// The slot -> alias entries `AddSearchAttributes` writes for `requested` (name -> type), with
/// Temporal's checks and messages. A name the namespace has already is skipped, whatever type
/// is asked for; when a type has no free slot left the whole request fails.
pub fn add_custom(
    aliases: &HashMap<String, String>,
    requested: &HashMap<String, i32>,
) -> Result<BTreeMap<String, String>, String> {
    check_new(requested)?;
    let mut names: Vec<(&String, i32)> = requested.iter().map(|(n, t)| (n, *t)).collect();
    names.sort();
    let taken: HashMap<&str, &str> = aliases
        .iter()
        .filter(|(_, alias)| !alias.is_empty())
        .map(|(slot, alias)| (slot.as_str(), alias.as_str()))
        .collect();
    let mut added = BTreeMap::new();
    for (name, ty) in names {
        if taken.values().any(|alias| alias == name) {
            continue;
        }
        let Some(ty) = SaType::from_indexed(ty) else {
            // Unspecified: no slot has that type.
            return Err(
                "Unable to create search attributes: cannot have more than 0 search attribute \
                 of type Unspecified."
                    .into(),
            );
        };
        let limit = custom_attribute_limit(ty);
        let free = (1..=limit)
            .map(|number| slot_name(ty, number))
            .find(|slot| !taken.contains_key(slot.as_str()) && !added.contains_key(slot));
        let Some(slot) = free else {
            return Err(format!(
                "Unable to create search attributes: cannot have more than {limit} search \
                 attribute of type {}.",
                ty.name()
            ));
        };
        added.insert(slot, name.clone());
    }
    Ok(added)
}

/// The slots `RemoveSearchAttributes` frees for `names`. Names the namespace does not have are
/// ignored, but a system attribute (or a slot name) cannot be removed.
pub fn remove_custom(
    aliases: &HashMap<String, String>,
    names: &[String],
) -> Result<Vec<String>, String> {
    let mut freed = Vec::new();
    for name in names {
        if let Some((slot, _)) = aliases
            .iter()
            .find(|(_, alias)| !alias.is_empty() && *alias == name)
        {
            freed.push(slot.clone());
            continue;
        }
        if system_attribute(name).is_some() || slot_type(name).is_some() {
            return Err(format!(
                "Unable to remove non-custom search attributes: {name}."
            ));
        }
    }
    Ok(freed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(entries: &[(&str, IndexedValueType)]) -> HashMap<String, i32> {
        entries
            .iter()
            .map(|(name, ty)| (name.to_string(), *ty as i32))
            .collect()
    }

    #[test]
    fn slot_names_have_a_type_and_a_range() {
        assert_eq!(slot_type("Keyword01"), Some(SaType::Keyword));
        assert_eq!(slot_type("Keyword10"), Some(SaType::Keyword));
        assert_eq!(slot_type("KeywordList03"), Some(SaType::KeywordList));
        assert_eq!(slot_type("Int03"), Some(SaType::Int));
        assert_eq!(slot_type("Int04"), None);
        assert_eq!(slot_type("Keyword11"), None);
        assert_eq!(slot_type("Keyword1"), None);
        assert_eq!(slot_type("Bool00"), None);
        assert_eq!(slot_type("CustomerId"), None);
    }

    #[test]
    fn adding_fills_the_lowest_free_slots_and_skips_known_names() {
        let mut aliases: HashMap<String, String> =
            [("Keyword01".to_string(), "Customer".to_string())].into();
        let added = add_custom(
            &aliases,
            &request(&[
                ("Customer", IndexedValueType::Int),
                ("Region", IndexedValueType::Keyword),
                ("Amount", IndexedValueType::Double),
            ]),
        )
        .unwrap();
        assert_eq!(
            added,
            BTreeMap::from([
                ("Double01".to_string(), "Amount".to_string()),
                ("Keyword02".to_string(), "Region".to_string()),
            ])
        );
        aliases.extend(added);
        let custom = custom_attributes(&aliases);
        assert_eq!(custom["Customer"], SaType::Keyword);
        assert_eq!(custom["Amount"], SaType::Double);
    }

    #[test]
    fn adding_gives_temporals_errors() {
        let none = HashMap::new();
        for (name, message) in [
            (
                "WorkflowId",
                "Search attribute WorkflowId is reserved by system.",
            ),
            (
                "TemporalFoo",
                "Search attribute TemporalFoo is reserved by system.",
            ),
            (
                "BuildIds",
                "Search attribute BuildIds is reserved by system.",
            ),
        ] {
            let error = add_custom(&none, &request(&[(name, IndexedValueType::Keyword)]));
            assert_eq!(error.unwrap_err(), message);
        }
        let error = add_custom(&none, &HashMap::from([("X".to_string(), 99)]));
        assert_eq!(error.unwrap_err(), "Unknown search attribute type: 99.");
        let error = add_custom(&none, &request(&[("X", IndexedValueType::Unspecified)]));
        assert_eq!(
            error.unwrap_err(),
            "Unable to create search attributes: cannot have more than 0 search attribute of \
             type Unspecified."
        );
        let four: HashMap<String, i32> = (1..=4)
            .map(|n| (format!("B{n}"), IndexedValueType::Bool as i32))
            .collect();
        assert_eq!(
            add_custom(&none, &four).unwrap_err(),
            "Unable to create search attributes: cannot have more than 3 search attribute of \
             type Bool."
        );
        let eleven: HashMap<String, i32> = (1..=11)
            .map(|n| (format!("K{n:02}"), IndexedValueType::Keyword as i32))
            .collect();
        assert_eq!(
            add_custom(&none, &eleven).unwrap_err(),
            "Unable to create search attributes: cannot have more than 10 search attribute of \
             type Keyword."
        );
    }

    #[test]
    fn removing_frees_slots_and_refuses_system_names() {
        let aliases: HashMap<String, String> = [
            ("Keyword01".to_string(), "Customer".to_string()),
            ("Int01".to_string(), "Count".to_string()),
        ]
        .into();
        let freed = remove_custom(&aliases, &["Count".into(), "Unknown".into()]).unwrap();
        assert_eq!(freed, vec!["Int01".to_string()]);
        assert_eq!(
            remove_custom(&aliases, &["WorkflowId".into()]).unwrap_err(),
            "Unable to remove non-custom search attributes: WorkflowId."
        );
        assert_eq!(
            remove_custom(&aliases, &["Keyword01".into()]).unwrap_err(),
            "Unable to remove non-custom search attributes: Keyword01."
        );
    }
}
