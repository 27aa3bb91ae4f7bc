//! `sundial dynconfig ...`: the operator CLI, as a library the server binary mounts.
//!
//! It works against a file, an etcd prefix or a ConfigMap, with or without a running
//! Sundial. Data goes to stdout, diagnostics to stderr; the exit code is nonzero when
//! something is wrong (1) or, for `diff`, when the sources differ (1).

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::constraints::{
    ConstrainedValue, Constraints, parse_history_task_type, parse_task_queue_type, render_entries,
};
use crate::load::{parse_document, render_document, render_entry_list};
use crate::metrics::Metrics;
use crate::open::{OpenOptions, SourceUrl, open_parsed};
use crate::setting::{Filter, Origin, Registry, normalize_key};
use crate::source::{Source, entries_differ, validate_write};
use crate::value::Value;

/// `sundial dynconfig`.
#[derive(Debug, Args)]
pub struct DynconfigArgs {
    /// Where the config lives: file:///path.yaml, etcd://host:port[,host:port]/prefix/ or
    /// configmap://namespace/name[?key=config.yaml].
    #[arg(long, global = true, env = "SUNDIAL_DYNAMIC_CONFIG")]
    pub source: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print a key's entries, or the one entry with exactly the given constraints.
    Get {
        key: String,
        #[command(flatten)]
        constraints: ConstraintArgs,
    },
    /// Set one entry (KEY VALUE [constraints]) or every key of a document (--file).
    Set {
        #[arg(required_unless_present = "file")]
        key: Option<String>,
        /// A YAML value: 100, 1m, true, "{InitialIntervalInSeconds: 2}".
        #[arg(required_unless_present = "file")]
        value: Option<String>,
        #[command(flatten)]
        constraints: ConstraintArgs,
        /// A document in Temporal's format; each of its keys replaces the stored list.
        #[arg(long, conflicts_with_all = ["key", "value"])]
        file: Option<PathBuf>,
    },
    /// Delete a key, or only its entry with exactly the given constraints.
    Delete {
        key: String,
        #[command(flatten)]
        constraints: ConstraintArgs,
    },
    /// Print the whole config.
    Dump {
        #[arg(long, value_enum, default_value = "yaml")]
        format: DumpFormat,
    },
    /// Check a document: errors (exit 1) and warnings (unknown keys, type mismatches).
    Validate {
        file: PathBuf,
        /// Treat warnings as errors.
        #[arg(long)]
        strict: bool,
    },
    /// Show which entry wins for the given constraints, and why.
    Explain {
        key: String,
        #[command(flatten)]
        constraints: ConstraintArgs,
    },
    /// Compare --source with another source; exit 1 when they differ.
    Diff { other: String },
    /// Stream changes until --count change-sets were seen or --timeout passed.
    Watch {
        #[arg(long)]
        count: Option<usize>,
        /// For example 30s or 5m.
        #[arg(long)]
        timeout: Option<String>,
    },
    /// Copy every key of --source to each target, deleting keys the source lacks.
    Sync {
        #[arg(long = "to", required = true, num_args = 1..)]
        to: Vec<String>,
        /// Keep keys that exist only in the target.
        #[arg(long)]
        no_delete: bool,
        /// Print what would change, write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DumpFormat {
    Yaml,
    Json,
}

/// Constraint flags, shared by get/set/delete/explain.
#[derive(Debug, Default, Clone, Args)]
pub struct ConstraintArgs {
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long)]
    pub namespace_id: Option<String>,
    #[arg(long)]
    pub task_queue: Option<String>,
    /// Workflow, Activity, Nexus or a number.
    #[arg(long)]
    pub task_type: Option<String>,
    /// A history task type name (TransferActivityTask) or number.
    #[arg(long)]
    pub history_task_type: Option<String>,
    #[arg(long)]
    pub shard_id: Option<i32>,
    #[arg(long)]
    pub destination: Option<String>,
    #[arg(long)]
    pub chasm_task_type: Option<String>,
}

fn enum_arg(text: &str) -> Value {
    match text.parse::<i64>() {
        Ok(number) => Value::Int(number),
        Err(_) => Value::String(text.to_string()),
    }
}

impl ConstraintArgs {
    /// The constraints given, or `None` when no flag was used.
    pub fn to_constraints(&self) -> anyhow::Result<Option<Constraints>> {
        let mut constraints = Constraints {
            namespace: self.namespace.clone().unwrap_or_default(),
            namespace_id: self.namespace_id.clone().unwrap_or_default(),
            task_queue_name: self.task_queue.clone().unwrap_or_default(),
            shard_id: self.shard_id.unwrap_or_default(),
            destination: self.destination.clone().unwrap_or_default(),
            chasm_task_type: self.chasm_task_type.clone().unwrap_or_default(),
            ..Constraints::default()
        };
        if let Some(task_type) = &self.task_type {
            constraints.task_type =
                parse_task_queue_type(&enum_arg(task_type)).map_err(anyhow::Error::msg)?;
        }
        if let Some(history_task_type) = &self.history_task_type {
            constraints.history_task_type = parse_history_task_type(&enum_arg(history_task_type))
                .map_err(anyhow::Error::msg)?;
        }
        Ok((!constraints.is_empty()).then_some(constraints))
    }
}

/// Runs a command, printing data to stdout. Returns the exit code.
pub async fn run(args: DynconfigArgs) -> anyhow::Result<i32> {
    let mut stdout = std::io::stdout();
    run_with_output(args, &mut stdout).await
}

/// [`run`] with data written to `out` (tests capture it).
pub async fn run_with_output(
    args: DynconfigArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let registry = Arc::new(Registry::builtin());
    if let Command::Validate { file, strict } = &args.command {
        return validate(file, *strict, &registry, out);
    }
    let Some(url) = args.source.clone() else {
        bail!(
            "--source is required (file:///path.yaml, etcd://host:port/prefix/ or configmap://namespace/name)"
        );
    };
    let target = Target::open(&url, registry.clone()).await?;
    let result = run_command(args.command, &target, &registry, out).await;
    target.source.stop().await;
    result
}

/// An opened source, plus the file path when writes must edit a file.
struct Target {
    source: Arc<dyn Source>,
    file: Option<PathBuf>,
}

impl Target {
    async fn open(url: &str, registry: Arc<Registry>) -> anyhow::Result<Target> {
        let parsed = SourceUrl::parse(url)?;
        let file = match &parsed {
            SourceUrl::File(path) => {
                if !path.exists() {
                    std::fs::write(path, "")
                        .with_context(|| format!("create {}", path.display()))?;
                }
                Some(path.clone())
            }
            _ => None,
        };
        let source = open_parsed(parsed, registry, Metrics::unregistered(), OpenOptions::TOOL)
            .await
            .with_context(|| format!("open {url}"))?;
        Ok(Target { source, file })
    }

    /// Replaces (or with `None` removes) one key's list.
    async fn write(
        &self,
        registry: &Registry,
        key: &str,
        entries: Option<Vec<ConstrainedValue>>,
    ) -> anyhow::Result<()> {
        match (&self.file, entries) {
            (Some(path), entries) => {
                let canonical = match &entries {
                    Some(entries) => validate_write(registry, key, entries)?,
                    None => key.to_string(),
                };
                edit_file(path, registry, |document| {
                    let normalized = normalize_key(key);
                    document.retain(|name, _| normalize_key(name) != normalized);
                    if let Some(entries) = entries {
                        document.insert(canonical, entries);
                    }
                })
            }
            (None, Some(entries)) => Ok(self.source.write_config(key, entries).await?),
            (None, None) => Ok(self.source.delete_key(key).await?),
        }
    }

    /// Stored names and entries, sorted by name.
    fn named_entries(&self) -> BTreeMap<String, Vec<ConstrainedValue>> {
        let snapshot = self.source.state().snapshot();
        snapshot
            .map
            .values()
            .map(|entry| (entry.name.clone(), entry.entries.to_vec()))
            .collect()
    }
}

/// Rewrites a file atomically (temporary file, then rename). Comments are not kept.
fn edit_file(
    path: &Path,
    registry: &Registry,
    edit: impl FnOnce(&mut BTreeMap<String, Vec<ConstrainedValue>>),
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    let parsed = parse_document(&text, registry)
        .map_err(|failure| anyhow::anyhow!("{}: {failure}", path.display()))?;
    let mut document: BTreeMap<String, Vec<ConstrainedValue>> = parsed.keys.into_iter().collect();
    edit(&mut document);
    let rendered = render_document(&document).map_err(anyhow::Error::msg)?;
    let staging = path.with_extension("sundial-tmp");
    std::fs::write(&staging, rendered).with_context(|| format!("write {}", staging.display()))?;
    std::fs::rename(&staging, path).with_context(|| format!("replace {}", path.display()))?;
    Ok(())
}

fn validate(
    file: &Path,
    strict: bool,
    registry: &Registry,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("read {}", file.display()))?;
    let (errors, warnings) = match parse_document(&text, registry) {
        Ok(parsed) => (Vec::new(), parsed.warnings),
        Err(failure) => (failure.errors, failure.warnings),
    };
    for error in &errors {
        writeln!(out, "error: {error}")?;
    }
    for warning in &warnings {
        writeln!(out, "warning: {warning}")?;
    }
    writeln!(out, "{} errors, {} warnings", errors.len(), warnings.len())?;
    Ok(if !errors.is_empty() || (strict && !warnings.is_empty()) {
        1
    } else {
        0
    })
}

fn parse_value_arg(text: &str) -> anyhow::Result<Value> {
    let yaml: serde_yaml::Value =
        serde_yaml::from_str(text).with_context(|| format!("parse value {text:?}"))?;
    Value::from_yaml(&yaml).map_err(anyhow::Error::msg)
}

async fn run_command(
    command: Command,
    target: &Target,
    registry: &Registry,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    match command {
        Command::Validate { .. } => unreachable!("handled before a source is opened"),
        Command::Get { key, constraints } => {
            let entries = target.source.get_value(&key);
            let wanted = constraints.to_constraints()?;
            if entries.is_empty() {
                eprintln!("{key} is not set");
                return Ok(1);
            }
            match wanted {
                None => write!(
                    out,
                    "{}",
                    render_entry_list(&entries).map_err(anyhow::Error::msg)?
                )?,
                Some(wanted) => match entries.iter().find(|entry| entry.constraints == wanted) {
                    Some(entry) => {
                        let text = serde_yaml::to_string(&entry.value.to_yaml())?;
                        write!(out, "{text}")?;
                    }
                    None => {
                        eprintln!("{key} has no entry with constraints {wanted}");
                        return Ok(1);
                    }
                },
            }
            Ok(0)
        }
        Command::Set {
            key,
            value,
            constraints,
            file,
        } => {
            if let Some(file) = file {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("read {}", file.display()))?;
                let parsed = parse_document(&text, registry)
                    .map_err(|f| anyhow::anyhow!("{}: {f}", file.display()))?;
                let mut failed = 0;
                for (name, entries) in parsed.keys {
                    if let Err(error) = target.write(registry, &name, Some(entries)).await {
                        eprintln!("set {name}: {error:#}");
                        failed += 1;
                    }
                }
                return Ok(if failed == 0 { 0 } else { 1 });
            }
            let key = key.expect("clap requires KEY without --file");
            let value = parse_value_arg(&value.expect("clap requires VALUE without --file"))?;
            let constraints = constraints.to_constraints()?.unwrap_or_default();
            let mut entries = target.source.get_value(&key).to_vec();
            match entries
                .iter_mut()
                .find(|entry| entry.constraints == constraints)
            {
                Some(entry) => entry.value = value,
                None => entries.push(ConstrainedValue::new(constraints, value)),
            }
            target.write(registry, &key, Some(entries)).await?;
            Ok(0)
        }
        Command::Delete { key, constraints } => {
            let entries = target.source.get_value(&key);
            if entries.is_empty()
                && !target
                    .source
                    .state()
                    .load()
                    .map
                    .contains_key(&normalize_key(&key))
            {
                eprintln!("{key} is not set");
                return Ok(1);
            }
            match constraints.to_constraints()? {
                None => target.write(registry, &key, None).await?,
                Some(wanted) => {
                    let remaining: Vec<ConstrainedValue> = entries
                        .iter()
                        .filter(|entry| entry.constraints != wanted)
                        .cloned()
                        .collect();
                    if remaining.len() == entries.len() {
                        eprintln!("{key} has no entry with constraints {wanted}");
                        return Ok(1);
                    }
                    let remaining = (!remaining.is_empty()).then_some(remaining);
                    target.write(registry, &key, remaining).await?;
                }
            }
            Ok(0)
        }
        Command::Dump { format } => {
            match format {
                DumpFormat::Yaml => {
                    write!(
                        out,
                        "{}",
                        render_document(&target.named_entries()).map_err(anyhow::Error::msg)?
                    )?;
                }
                DumpFormat::Json => {
                    writeln!(
                        out,
                        "{}",
                        serde_json::to_string_pretty(&target.source.state().debug_json())?
                    )?;
                }
            }
            Ok(0)
        }
        Command::Explain { key, constraints } => explain(target, registry, &key, &constraints, out),
        Command::Diff { other } => {
            let other_target = Target::open(&other, Arc::new(Registry::builtin())).await?;
            let differences = diff(&target.named_entries(), &other_target.named_entries());
            other_target.source.stop().await;
            for line in &differences {
                writeln!(out, "{line}")?;
            }
            Ok(if differences.is_empty() { 0 } else { 1 })
        }
        Command::Watch { count, timeout } => watch(target, count, timeout, out).await,
        Command::Sync {
            to,
            no_delete,
            dry_run,
        } => {
            let wanted = target.named_entries();
            let mut failed = 0;
            for url in to {
                let destination = Target::open(&url, Arc::new(Registry::builtin())).await?;
                let current = destination.named_entries();
                let lines = diff(&current, &wanted);
                for line in &lines {
                    writeln!(out, "{url}: {line}")?;
                }
                if !dry_run {
                    failed +=
                        apply_sync(&destination, registry, &current, &wanted, no_delete).await;
                }
                destination.source.stop().await;
            }
            Ok(if failed == 0 { 0 } else { 1 })
        }
    }
}

/// Differences turning `from` into `to`: `+ key`, `- key`, `~ key`, by normalised key.
fn diff(
    from: &BTreeMap<String, Vec<ConstrainedValue>>,
    to: &BTreeMap<String, Vec<ConstrainedValue>>,
) -> Vec<String> {
    let normalized = |map: &BTreeMap<String, Vec<ConstrainedValue>>| -> BTreeMap<String, (String, Vec<ConstrainedValue>)> {
        map.iter().map(|(name, entries)| (normalize_key(name), (name.clone(), entries.clone()))).collect()
    };
    let from = normalized(from);
    let to = normalized(to);
    let mut lines = Vec::new();
    for (key, (name, entries)) in &to {
        match from.get(key) {
            None => lines.push(format!("+ {name} {}", render_entries(entries))),
            Some((_, old)) if entries_differ(old, entries) => lines.push(format!(
                "~ {name} {} -> {}",
                render_entries(old),
                render_entries(entries)
            )),
            Some(_) => {}
        }
    }
    for (key, (name, entries)) in &from {
        if !to.contains_key(key) {
            lines.push(format!("- {name} {}", render_entries(entries)));
        }
    }
    lines
}

async fn apply_sync(
    destination: &Target,
    registry: &Registry,
    current: &BTreeMap<String, Vec<ConstrainedValue>>,
    wanted: &BTreeMap<String, Vec<ConstrainedValue>>,
    no_delete: bool,
) -> usize {
    let current_by_key: HashMap<String, &Vec<ConstrainedValue>> = current
        .iter()
        .map(|(name, entries)| (normalize_key(name), entries))
        .collect();
    let wanted_keys: Vec<String> = wanted.keys().map(|name| normalize_key(name)).collect();
    let mut failed = 0;
    for (name, entries) in wanted {
        let unchanged = current_by_key
            .get(&normalize_key(name))
            .is_some_and(|old| !entries_differ(old, entries));
        if unchanged {
            continue;
        }
        if let Err(error) = destination
            .write(registry, name, Some(entries.clone()))
            .await
        {
            eprintln!("sync {name}: {error:#}");
            failed += 1;
        }
    }
    if !no_delete {
        for name in current.keys() {
            if !wanted_keys.contains(&normalize_key(name))
                && let Err(error) = destination.write(registry, name, None).await
            {
                eprintln!("sync delete {name}: {error:#}");
                failed += 1;
            }
        }
    }
    failed
}

fn explain(
    target: &Target,
    registry: &Registry,
    key: &str,
    constraints: &ConstraintArgs,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let entries = target.source.get_value(key);
    let filter_constraints = constraints.to_constraints()?.unwrap_or_default();
    let filter = Filter::of(&filter_constraints);
    let Some(setting) = registry.get(key) else {
        writeln!(out, "{key}: not a registered setting; Sundial ignores it")?;
        writeln!(out, "stored entries: {}", render_entries(&entries))?;
        return Ok(1);
    };
    writeln!(
        out,
        "{}: {} setting, type {}",
        setting.key(),
        setting.kind(),
        setting.type_name()
    )?;
    writeln!(out, "  {}", setting.description())?;
    writeln!(out, "lookup: {filter_constraints}")?;
    let unused = filter.mask()
        & !setting
            .kind()
            .levels()
            .iter()
            .fold(0, |all, level| all | level);
    if unused != 0 {
        writeln!(
            out,
            "note: some given constraints are not used by a {} setting",
            setting.kind()
        )?;
    }
    writeln!(out, "precedence (most specific first):")?;
    for (index, level) in setting.kind().levels().iter().enumerate() {
        let level_constraints = project(&filter, *level);
        let hits: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, entry)| filter.matches_level(&Filter::of(&entry.constraints), *level))
            .map(|(position, _)| position)
            .collect();
        let hits_text = if hits.is_empty() {
            "no entry".to_string()
        } else {
            hits.iter()
                .map(|h| format!("entry #{h}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(out, "  {}. {level_constraints}: {hits_text}", index + 1)?;
    }
    let explanation = setting.explain(&entries, &filter);
    let why = match &explanation.origin {
        Origin::Entry(index) => format!("entry #{index} ({}) wins", entries[*index]),
        Origin::ConstrainedDefault(_) => {
            "a constrained default wins (no user entry at that level or above)".into()
        }
        Origin::Default => "no entry matches; the compiled default applies".into(),
    };
    writeln!(out, "result: {} ({why})", explanation.value)?;
    if let Some(error) = explanation.conversion_error {
        writeln!(
            out,
            "warning: the winning entry does not convert ({error}); the default is used instead"
        )?;
    }
    Ok(0)
}

/// The filter reduced to a precedence level's fields, for display.
fn project(filter: &Filter<'_>, level: u8) -> Constraints {
    let all = filter.to_constraints();
    let probe = |bit: u8| level & bit != 0;
    Constraints {
        namespace: if probe(1) {
            all.namespace
        } else {
            String::new()
        },
        namespace_id: if probe(1 << 1) {
            all.namespace_id
        } else {
            String::new()
        },
        task_queue_name: if probe(1 << 2) {
            all.task_queue_name
        } else {
            String::new()
        },
        task_type: if probe(1 << 3) { all.task_type } else { 0 },
        history_task_type: if probe(1 << 4) {
            all.history_task_type
        } else {
            0
        },
        shard_id: if probe(1 << 5) { all.shard_id } else { 0 },
        destination: if probe(1 << 6) {
            all.destination
        } else {
            String::new()
        },
        chasm_task_type: if probe(1 << 7) {
            all.chasm_task_type
        } else {
            String::new()
        },
    }
}

async fn watch(
    target: &Target,
    count: Option<usize>,
    timeout: Option<String>,
    out: &mut (dyn Write + Send),
) -> anyhow::Result<i32> {
    let timeout = match timeout {
        Some(text) => Some(crate::duration::nanos_to_duration(
            crate::duration::parse_duration_nanos(&text).map_err(anyhow::Error::msg)?,
        )),
        None => None,
    };
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let _subscription = target.source.state().subscribe(move |changes| {
        let _ = sender.send(changes.clone());
    });
    let deadline = tokio::time::sleep(timeout.unwrap_or(Duration::from_secs(u64::from(u32::MAX))));
    tokio::pin!(deadline);
    let mut seen = 0;
    loop {
        tokio::select! {
            _ = &mut deadline => return Ok(0),
            _ = tokio::signal::ctrl_c() => return Ok(0),
            changes = receiver.recv() => {
                let Some(changes) = changes else { return Ok(0) };
                for (key, entries) in &changes {
                    match entries {
                        Some(entries) => writeln!(out, "set {key} {}", render_entries(entries))?,
                        None => writeln!(out, "deleted {key}")?,
                    }
                }
                out.flush()?;
                seen += 1;
                if count.is_some_and(|count| seen >= count) {
                    return Ok(0);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: DynconfigArgs,
    }

    #[test]
    fn parses_the_documented_forms() {
        let cli = Cli::try_parse_from([
            "x",
            "--source",
            "etcd://a:1/p/",
            "set",
            "frontend.namespaceRPS",
            "500",
            "--namespace",
            "busy",
        ])
        .unwrap();
        let Command::Set {
            key,
            value,
            constraints,
            file,
        } = cli.args.command
        else {
            panic!("set")
        };
        assert_eq!(
            (key.as_deref(), value.as_deref(), file),
            (Some("frontend.namespaceRPS"), Some("500"), None)
        );
        assert_eq!(
            constraints.to_constraints().unwrap().unwrap().namespace,
            "busy"
        );
        assert!(Cli::try_parse_from(["x", "set", "--file", "f.yaml"]).is_ok());
        assert!(Cli::try_parse_from(["x", "set", "k"]).is_err());
        assert!(
            Cli::try_parse_from(["x", "sync"]).is_err(),
            "--to is required"
        );
        let cli = Cli::try_parse_from([
            "x",
            "explain",
            "k",
            "--task-queue",
            "q",
            "--task-type",
            "Activity",
        ])
        .unwrap();
        let Command::Explain { constraints, .. } = cli.args.command else {
            panic!("explain")
        };
        assert_eq!(constraints.to_constraints().unwrap().unwrap().task_type, 2);
    }

    #[test]
    fn diff_lines() {
        let entries = |v: i64| vec![ConstrainedValue::global(Value::Int(v))];
        let from = BTreeMap::from([("a".to_string(), entries(1)), ("B".to_string(), entries(2))]);
        let to = BTreeMap::from([
            ("a".to_string(), entries(3)),
            ("b".to_string(), entries(2)),
            ("c".to_string(), entries(4)),
        ]);
        let lines = diff(&from, &to);
        assert_eq!(lines, vec!["~ a [1] -> [3]", "+ c [4]"]);
        assert_eq!(diff(&to, &from), vec!["~ a [3] -> [1]", "- c [4]"]);
    }
}
