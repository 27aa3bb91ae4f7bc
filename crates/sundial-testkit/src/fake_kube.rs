//! An in-process fake Kubernetes API server for ConfigMaps (dynconfig spec §12.3).
//!
//! It serves only `/api/v1/namespaces/{ns}/configmaps[/{name}]` over plain HTTP on
//! 127.0.0.1:0, so the real `kube` client can talk to it. It keeps one global
//! resourceVersion counter, a retained event window for watches, and fault hooks: compact
//! the window (410), close watches, fail the next N requests, delay responses, one 409 on
//! PUT, the 1 MiB data limit (422), 403, dropping an event, and a request log.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::Response;
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{broadcast, oneshot};

/// Largest total size of a ConfigMap's data, like the real API server.
pub const MAX_DATA_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone)]
struct Event {
    resource_version: u64,
    kind: &'static str,
    namespace: String,
    object: Value,
}

#[derive(Debug, Clone)]
enum Signal {
    Event(Event),
    Close { bookmark: bool },
}

#[derive(Default)]
struct Faults {
    fail_next: Vec<(u16, Option<u64>)>,
    delay: Option<Duration>,
    conflict_next_puts: usize,
    forbidden: bool,
    drop_next_events: usize,
}

struct Store {
    counter: u64,
    objects: BTreeMap<(String, String), Value>,
    events: Vec<Event>,
    /// Watches from a resourceVersion below this get 410 Expired.
    oldest_retained: u64,
    faults: Faults,
    requests: Vec<String>,
}

/// A running fake API server. Dropping it shuts the server down.
pub struct FakeKube {
    inner: Arc<Inner>,
    address: SocketAddr,
    _shutdown: oneshot::Sender<()>,
}

struct Inner {
    store: Mutex<Store>,
    signals: broadcast::Sender<Signal>,
}

impl FakeKube {
    /// Starts the server on a free loopback port.
    pub async fn start() -> FakeKube {
        let (signals, _) = broadcast::channel(1024);
        let inner = Arc::new(Inner {
            store: Mutex::new(Store {
                counter: 1,
                objects: BTreeMap::new(),
                events: Vec::new(),
                oldest_retained: 0,
                faults: Faults::default(),
                requests: Vec::new(),
            }),
            signals,
        });
        let app = axum::Router::new()
            .fallback(handle)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake kube");
        let address = listener.local_addr().expect("local address");
        let (shutdown, shutdown_receiver) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_receiver.await;
                })
                .await;
        });
        FakeKube {
            inner,
            address,
            _shutdown: shutdown,
        }
    }

    /// `http://127.0.0.1:<port>`, for `kube::Config::new`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every request so far as `METHOD path?query STATUS`.
    pub fn requests(&self) -> Vec<String> {
        self.inner.store.lock().requests.clone()
    }

    pub fn clear_requests(&self) {
        self.inner.store.lock().requests.clear();
    }

    /// The stored object, if any.
    pub fn get(&self, namespace: &str, name: &str) -> Option<Value> {
        self.inner
            .store
            .lock()
            .objects
            .get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }

    /// One data key of a stored ConfigMap.
    pub fn data(&self, namespace: &str, name: &str, key: &str) -> Option<String> {
        self.get(namespace, name)?
            .get("data")?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }

    /// Creates or replaces a ConfigMap's data key as another client would (bumps the
    /// resourceVersion and notifies watchers).
    pub fn set_data(&self, namespace: &str, name: &str, key: &str, text: &str) {
        let mut store = self.inner.store.lock();
        let id = (namespace.to_string(), name.to_string());
        let (mut object, kind) = match store.objects.get(&id) {
            Some(object) => (object.clone(), "MODIFIED"),
            None => (new_object(namespace, name), "ADDED"),
        };
        object["data"][key] = Value::String(text.to_string());
        store.write_event(&self.inner.signals, namespace, name, object, kind);
    }

    /// Deletes a ConfigMap as another client would.
    pub fn delete(&self, namespace: &str, name: &str) {
        let mut store = self.inner.store.lock();
        store.remove(&self.inner.signals, namespace, name);
    }

    /// Forgets every retained event: a watch from an older resourceVersion gets 410.
    pub fn compact(&self) {
        let mut store = self.inner.store.lock();
        store.oldest_retained = store.counter + 1;
        store.events.clear();
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.inner.store.lock().counter
    }

    /// Closes every open watch now, optionally after a BOOKMARK.
    pub fn close_watches(&self, bookmark: bool) {
        let _ = self.inner.signals.send(Signal::Close { bookmark });
    }

    /// The next `count` requests fail with `status` (500, 503, 429...). For 429 a
    /// `Retry-After` of `retry_after` seconds is sent.
    pub fn fail_next(&self, count: usize, status: u16, retry_after: Option<u64>) {
        let mut store = self.inner.store.lock();
        for _ in 0..count {
            store.faults.fail_next.push((status, retry_after));
        }
    }

    pub fn set_delay(&self, delay: Option<Duration>) {
        self.inner.store.lock().faults.delay = delay;
    }

    /// The next `count` PUTs answer 409 Conflict (a racing writer).
    pub fn conflict_next_puts(&self, count: usize) {
        self.inner.store.lock().faults.conflict_next_puts = count;
    }

    /// Answer every request with 403 Forbidden (RBAC tests).
    pub fn set_forbidden(&self, forbidden: bool) {
        self.inner.store.lock().faults.forbidden = forbidden;
    }

    /// Do not deliver the next `count` watch events (they stay stored).
    pub fn drop_next_events(&self, count: usize) {
        self.inner.store.lock().faults.drop_next_events = count;
    }

    /// Number of watch requests answered so far (the log also holds them).
    pub fn watch_requests(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .filter(|r| r.contains("watch="))
            .collect()
    }
}

fn new_object(namespace: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {}
    })
}

impl Store {
    /// Stores `object` at a new resourceVersion and records the event.
    fn write(
        &mut self,
        namespace: &str,
        name: &str,
        mut object: Value,
        kind: &'static str,
    ) -> Value {
        self.counter += 1;
        let resource_version = self.counter;
        let metadata = &mut object["metadata"];
        metadata["resourceVersion"] = Value::String(resource_version.to_string());
        metadata["name"] = Value::String(name.to_string());
        metadata["namespace"] = Value::String(namespace.to_string());
        if metadata.get("uid").is_none_or(Value::is_null) {
            metadata["uid"] = Value::String(format!("uid-{namespace}-{name}-{resource_version}"));
            metadata["creationTimestamp"] = Value::String("2026-01-01T00:00:00Z".into());
        }
        object["apiVersion"] = Value::String("v1".into());
        object["kind"] = Value::String("ConfigMap".into());
        self.objects
            .insert((namespace.to_string(), name.to_string()), object.clone());
        let event = Event {
            resource_version,
            kind,
            namespace: namespace.to_string(),
            object: object.clone(),
        };
        self.events.push(event);
        object
    }

    fn remove(
        &mut self,
        signals: &broadcast::Sender<Signal>,
        namespace: &str,
        name: &str,
    ) -> Option<Value> {
        let mut object = self
            .objects
            .remove(&(namespace.to_string(), name.to_string()))?;
        self.counter += 1;
        object["metadata"]["resourceVersion"] = Value::String(self.counter.to_string());
        let event = Event {
            resource_version: self.counter,
            kind: "DELETED",
            namespace: namespace.to_string(),
            object: object.clone(),
        };
        self.events.push(event.clone());
        if self.faults.drop_next_events > 0 {
            self.faults.drop_next_events -= 1;
        } else {
            let _ = signals.send(Signal::Event(event));
        }
        Some(object)
    }
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code
    })
}

fn json_response(code: u16, body: &Value) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .expect("valid response")
}

fn data_size(object: &Value) -> usize {
    object
        .get("data")
        .and_then(Value::as_object)
        .map(|data| {
            data.iter()
                .map(|(k, v)| k.len() + v.as_str().map_or(0, str::len))
                .sum()
        })
        .unwrap_or(0)
}

fn query_params(uri: &Uri) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        params.insert(percent_decode(key), percent_decode(value));
    }
    params
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&text[index + 1..index + 3], 16)
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(if bytes[index] == b'+' {
            b' '
        } else {
            bytes[index]
        });
        index += 1;
    }
    String::from_utf8_lossy(&out).to_string()
}

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let delay = inner.store.lock().faults.delay;
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let response = route(&inner, &method, &uri, &headers, &body);
    let line = format!(
        "{method} {}{} {}",
        uri.path(),
        uri.query().map(|q| format!("?{q}")).unwrap_or_default(),
        response.as_ref().map_or(200, |r| r.status().as_u16())
    );
    inner.store.lock().requests.push(line);
    match response {
        Some(response) => response,
        None => watch(&inner, &uri),
    }
}

/// Handles everything but an accepted watch (`None`).
fn route(
    inner: &Inner,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let mut store = inner.store.lock();
    if let Some((code, retry_after)) =
        (!store.faults.fail_next.is_empty()).then(|| store.faults.fail_next.remove(0))
    {
        let mut response = json_response(code, &status(code, "InternalError", "injected failure"));
        if let Some(seconds) = retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                seconds.to_string().parse().expect("number"),
            );
        }
        return Some(response);
    }
    if store.faults.forbidden {
        return Some(json_response(
            403,
            &status(403, "Forbidden", "configmaps is forbidden"),
        ));
    }
    let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
    let (namespace, name) = match segments.as_slice() {
        ["api", "v1", "namespaces", namespace, "configmaps"] => (namespace.to_string(), None),
        ["api", "v1", "namespaces", namespace, "configmaps", name] => {
            (namespace.to_string(), Some(name.to_string()))
        }
        _ => {
            return Some(json_response(
                404,
                &status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource",
                ),
            ));
        }
    };
    let params = query_params(uri);
    let not_found = |name: &str| {
        json_response(
            404,
            &status(404, "NotFound", &format!("configmaps \"{name}\" not found")),
        )
    };
    let parse_body = || serde_json::from_slice::<Value>(body).ok();
    match (method.clone(), name) {
        (Method::GET, None) => {
            if matches!(params.get("watch").map(String::as_str), Some("true" | "1")) {
                return None;
            }
            let selected = selector_name(&params);
            let items: Vec<Value> = store
                .objects
                .iter()
                .filter(|((ns, n), _)| {
                    *ns == namespace && selected.as_deref().is_none_or(|s| s == n)
                })
                .map(|(_, object)| object.clone())
                .collect();
            Some(json_response(
                200,
                &json!({
                    "kind": "ConfigMapList",
                    "apiVersion": "v1",
                    "metadata": {"resourceVersion": store.counter.to_string()},
                    "items": items
                }),
            ))
        }
        (Method::GET, Some(name)) => Some(match store.objects.get(&(namespace, name.clone())) {
            Some(object) => json_response(200, object),
            None => not_found(&name),
        }),
        (Method::POST, None) => {
            let Some(object) = parse_body() else {
                return Some(json_response(
                    400,
                    &status(400, "BadRequest", "invalid body"),
                ));
            };
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if store
                .objects
                .contains_key(&(namespace.clone(), name.clone()))
            {
                return Some(json_response(
                    409,
                    &status(
                        409,
                        "AlreadyExists",
                        &format!("configmaps \"{name}\" already exists"),
                    ),
                ));
            }
            if data_size(&object) > MAX_DATA_BYTES {
                return Some(json_response(
                    422,
                    &status(422, "Invalid", "ConfigMap data too long"),
                ));
            }
            let stored = store.write_event(&inner.signals, &namespace, &name, object, "ADDED");
            Some(json_response(201, &stored))
        }
        (Method::PUT, Some(name)) => {
            let Some(object) = parse_body() else {
                return Some(json_response(
                    400,
                    &status(400, "BadRequest", "invalid body"),
                ));
            };
            let Some(current) = store
                .objects
                .get(&(namespace.clone(), name.clone()))
                .cloned()
            else {
                return Some(not_found(&name));
            };
            let conflict = || {
                json_response(
                    409,
                    &status(
                        409,
                        "Conflict",
                        &format!(
                            "Operation cannot be fulfilled on configmaps \"{name}\": the object has been modified"
                        ),
                    ),
                )
            };
            if store.faults.conflict_next_puts > 0 {
                store.faults.conflict_next_puts -= 1;
                return Some(conflict());
            }
            let requested = object["metadata"]["resourceVersion"]
                .as_str()
                .unwrap_or_default();
            if !requested.is_empty()
                && requested
                    != current["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap_or_default()
            {
                return Some(conflict());
            }
            if data_size(&object) > MAX_DATA_BYTES {
                return Some(json_response(
                    422,
                    &status(422, "Invalid", "ConfigMap data too long"),
                ));
            }
            let mut object = object;
            object["metadata"]["uid"] = current["metadata"]["uid"].clone();
            object["metadata"]["creationTimestamp"] =
                current["metadata"]["creationTimestamp"].clone();
            let stored = store.write_event(&inner.signals, &namespace, &name, object, "MODIFIED");
            Some(json_response(200, &stored))
        }
        (Method::PATCH, Some(name)) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let Some(current) = store
                .objects
                .get(&(namespace.clone(), name.clone()))
                .cloned()
            else {
                return Some(not_found(&name));
            };
            let Some(patch) = parse_body() else {
                return Some(json_response(
                    400,
                    &status(400, "BadRequest", "invalid body"),
                ));
            };
            let patched = if content_type.starts_with("application/merge-patch+json") {
                let requested = patch["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or_default();
                if !requested.is_empty()
                    && requested
                        != current["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default()
                {
                    return Some(json_response(
                        409,
                        &status(409, "Conflict", "the object has been modified"),
                    ));
                }
                let mut merged = current.clone();
                merge_patch(&mut merged, &patch);
                merged
            } else if content_type.starts_with("application/json-patch+json") {
                match json_patch(&current, &patch) {
                    Ok(patched) => patched,
                    Err(code) => {
                        return Some(json_response(
                            code,
                            &status(code, "Invalid", "json patch failed"),
                        ));
                    }
                }
            } else {
                return Some(json_response(
                    415,
                    &status(415, "UnsupportedMediaType", "unsupported patch type"),
                ));
            };
            if data_size(&patched) > MAX_DATA_BYTES {
                return Some(json_response(
                    422,
                    &status(422, "Invalid", "ConfigMap data too long"),
                ));
            }
            let stored = store.write_event(&inner.signals, &namespace, &name, patched, "MODIFIED");
            Some(json_response(200, &stored))
        }
        (Method::DELETE, Some(name)) => {
            Some(match store.remove(&inner.signals, &namespace, &name) {
                Some(object) => json_response(200, &object),
                None => not_found(&name),
            })
        }
        _ => Some(json_response(
            405,
            &status(405, "MethodNotAllowed", "method not allowed"),
        )),
    }
}

impl Store {
    fn write_event(
        &mut self,
        signals: &broadcast::Sender<Signal>,
        namespace: &str,
        name: &str,
        object: Value,
        kind: &'static str,
    ) -> Value {
        let stored = self.write(namespace, name, object, kind);
        let event = self.events.last().cloned().expect("write records an event");
        if self.faults.drop_next_events > 0 {
            self.faults.drop_next_events -= 1;
        } else {
            let _ = signals.send(Signal::Event(event));
        }
        stored
    }
}

fn selector_name(params: &BTreeMap<String, String>) -> Option<String> {
    let selector = params.get("fieldSelector")?;
    selector
        .split(',')
        .find_map(|term| term.strip_prefix("metadata.name=").map(str::to_string))
}

fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_fields) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let fields = target.as_object_mut().expect("made an object");
    for (key, value) in patch_fields {
        if value.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// RFC 6902 subset: add, replace, remove, test on object paths.
fn json_patch(current: &Value, patch: &Value) -> Result<Value, u16> {
    let mut document = current.clone();
    for operation in patch.as_array().ok_or(400u16)? {
        let op = operation["op"].as_str().ok_or(400u16)?;
        let path = operation["path"].as_str().ok_or(400u16)?;
        let pointer_parent = path
            .rsplit_once('/')
            .map(|(parent, _)| parent)
            .unwrap_or("");
        let last = path
            .rsplit('/')
            .next()
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~");
        match op {
            "test" => {
                if document.pointer(path) != Some(&operation["value"]) {
                    return Err(422);
                }
            }
            "add" | "replace" => {
                let parent = document.pointer_mut(pointer_parent).ok_or(422u16)?;
                parent
                    .as_object_mut()
                    .ok_or(422u16)?
                    .insert(last, operation["value"].clone());
            }
            "remove" => {
                let parent = document.pointer_mut(pointer_parent).ok_or(422u16)?;
                parent
                    .as_object_mut()
                    .ok_or(422u16)?
                    .remove(&last)
                    .ok_or(422u16)?;
            }
            _ => return Err(400),
        }
    }
    Ok(document)
}

fn watch(inner: &Arc<Inner>, uri: &Uri) -> Response {
    let params = query_params(uri);
    let selected = selector_name(&params);
    let namespace = uri
        .path()
        .trim_matches('/')
        .split('/')
        .nth(3)
        .unwrap_or_default()
        .to_string();
    let requested: String = params.get("resourceVersion").cloned().unwrap_or_default();
    let timeout = params
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(Duration::from_secs(300));
    let matches = {
        let namespace = namespace.clone();
        move |event: &Event| {
            event.namespace == namespace
                && selected
                    .as_deref()
                    .is_none_or(|name| event.object["metadata"]["name"].as_str() == Some(name))
        }
    };

    let store = inner.store.lock();
    let mut receiver = inner.signals.subscribe();
    let mut initial: Vec<Value> = Vec::new();
    if requested.is_empty() || requested == "0" {
        for ((ns, _), object) in &store.objects {
            let event = Event {
                resource_version: 0,
                kind: "ADDED",
                namespace: ns.clone(),
                object: object.clone(),
            };
            if matches(&event) {
                initial.push(json!({"type": "ADDED", "object": object}));
            }
        }
    } else {
        let from: u64 = requested.parse().unwrap_or(0);
        if from + 1 < store.oldest_retained {
            let message = format!(
                "too old resource version: {from} ({})",
                store.oldest_retained
            );
            let line = json!({"type": "ERROR", "object": status(410, "Expired", &message)});
            return stream_response(vec![line], None);
        }
        for event in store.events.iter().filter(|e| e.resource_version > from) {
            if matches(event) {
                initial.push(json!({"type": event.kind, "object": event.object}));
            }
        }
    }
    drop(store);

    let (sender, lines) = tokio::sync::mpsc::unbounded_channel::<Value>();
    for line in initial {
        let _ = sender.send(line);
    }
    let inner = inner.clone();
    tokio::spawn(async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let bookmark = |rv: u64| json!({"type": "BOOKMARK", "object": {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"resourceVersion": rv.to_string()}}});
        loop {
            tokio::select! {
                _ = &mut deadline => {
                    let rv = inner.store.lock().counter;
                    let _ = sender.send(bookmark(rv));
                    return;
                }
                signal = receiver.recv() => match signal {
                    Ok(Signal::Event(event)) => {
                        if matches(&event) && sender.send(json!({"type": event.kind, "object": event.object})).is_err() {
                            return;
                        }
                    }
                    Ok(Signal::Close { bookmark: with_bookmark }) => {
                        if with_bookmark {
                            let rv = inner.store.lock().counter;
                            let _ = sender.send(bookmark(rv));
                        }
                        return;
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => return,
                    Err(broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    stream_response(Vec::new(), Some(lines))
}

fn stream_response(
    lines: Vec<Value>,
    live: Option<tokio::sync::mpsc::UnboundedReceiver<Value>>,
) -> Response {
    let head = futures::stream::iter(
        lines
            .into_iter()
            .map(|line| Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n")))),
    );
    let body = match live {
        Some(receiver) => {
            let tail = tokio_stream::wrappers::UnboundedReceiverStream::new(receiver)
                .map(|line| Ok::<Bytes, Infallible>(Bytes::from(format!("{line}\n"))));
            Body::from_stream(futures::StreamExt::chain(head, tail))
        }
        None => Body::from_stream(head),
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("valid response")
}

use tokio_stream::StreamExt as _;
