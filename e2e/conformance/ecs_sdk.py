"""Drive `vk-cloud serve --face ecs` with AWS's own Python SDK (boto3), as its users call it.

Usage: ecs_sdk.py ENDPOINT(http://host:port) KEY_ID SECRET. Prints one `ok <step>` line per
check and exits non-zero (with the reason) at the first one that fails.

Every call goes through botocore with its defaults (SigV4, its retry rules, its parsers).
Each JSON answer must parse, and must name only fields the service model knows (`strict`):
a misspelt field would otherwise be dropped silently by the parser.
"""
import base64
import json
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

ENDPOINT, KEY_ID, SECRET = sys.argv[1:4]
REGION = "us-east-1"
STATUSES = ["PROVISIONING", "PENDING", "ACTIVATING", "RUNNING", "DEACTIVATING", "STOPPING",
            "DEPROVISIONING", "STOPPED"]


def ok(step):
    print("ok", step, flush=True)


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


def unknown_fields(value, shape, path, found):
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for key, v in value.items():
            if key not in shape.members:
                found.append(f"{path}.{key}")
            else:
                unknown_fields(v, shape.members[key], f"{path}.{key}", found)
    elif kind == "list" and isinstance(value, list):
        for i, v in enumerate(value):
            unknown_fields(v, shape.member, f"{path}[{i}]", found)
    elif kind == "map" and isinstance(value, dict):
        for k, v in value.items():
            unknown_fields(v, shape.value, f"{path}[{k}]", found)


def strict(http_response, parsed, model, **_):
    """Every field of a success answer is one the service model has."""
    if http_response.status_code != 200 or model.output_shape is None:
        return
    raw = json.loads(http_response.content or b"{}")
    found = []
    unknown_fields(raw, model.output_shape, model.name, found)
    check(not found, f"{model.name}: fields the model does not know: {found}")


def client(service, key=KEY_ID, secret=SECRET, token=None, **config):
    c = boto3.client(service, endpoint_url=ENDPOINT, region_name=REGION,
                     aws_access_key_id=key, aws_secret_access_key=secret,
                     aws_session_token=token, config=Config(**config) if config else None)
    if service != "sts":
        c.meta.events.register("after-call", strict)
    return c


def fails_with(code, call, what):
    try:
        call()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        check(got == code, f"{what}: expected {code}, got {got}: {e}")
        return e
    raise SystemExit(f"FAILED: {what}: no error, expected {code}")


def admin_faults(config):
    req = urllib.request.Request(ENDPOINT + "/admin/faults", data=json.dumps(config).encode(),
                                 method="POST")
    urllib.request.urlopen(req).read()


ecs = client("ecs")
logs = client("logs")
sts = client("sts")
NETWORK = {"awsvpcConfiguration": {"subnets": ["subnet-0a1b"], "securityGroups": ["sg-1"],
                                   "assignPublicIp": "DISABLED"}}


def definition(family, containers, cpu="256", memory="512"):
    return dict(family=family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
                cpu=cpu, memory=memory, executionRoleArn="arn:aws:iam::123456789012:role/exec",
                containerDefinitions=containers)


def container(name, env, essential=True, log_group="/ecs/conf"):
    return {"name": name, "image": "busybox", "essential": essential,
            "environment": [{"name": k, "value": v} for k, v in env.items()],
            "logConfiguration": {"logDriver": "awslogs", "options": {
                "awslogs-group": log_group, "awslogs-region": REGION,
                "awslogs-stream-prefix": "conf"}}}


# Task definitions
logs.create_log_group(logGroupName="/ecs/conf")
job = [container("app", {"MOCKCLOUD_RUN_MS": "1500", "MOCKCLOUD_EXIT_CODE": "3",
                          "MOCKCLOUD_LOG_INTERVAL_MS": "50"}),
       container("side", {"MOCKCLOUD_RUN_MS": "forever"}, essential=False)]
first = ecs.register_task_definition(**definition("conf", job),
                                     tags=[{"key": "team", "value": "vk"}])["taskDefinition"]
check(first["revision"] == 1 and first["status"] == "ACTIVE", f"revision 1: {first}")
second = ecs.register_task_definition(**definition("conf", job, cpu="1 vCPU", memory="2 GB"))
check(second["taskDefinition"]["cpu"] == "1024", "sizes in words become units")
ok("register_task_definition")
got = ecs.describe_task_definition(taskDefinition="conf", include=["TAGS"])
check(got["taskDefinition"]["revision"] == 2, "the family names its latest revision")
got = ecs.describe_task_definition(taskDefinition=first["taskDefinitionArn"], include=["TAGS"])
check(got["tags"] == [{"key": "team", "value": "vk"}], f"tags: {got.get('tags')}")
ok("describe_task_definition")
page = ecs.list_task_definitions(familyPrefix="conf", maxResults=1)
check(len(page["taskDefinitionArns"]) == 1 and "nextToken" in page, "a first page")
rest = ecs.list_task_definitions(familyPrefix="conf", nextToken=page["nextToken"])
check(len(rest["taskDefinitionArns"]) == 1 and "nextToken" not in rest, "the last page")
ok("list_task_definitions")
gone = ecs.deregister_task_definition(taskDefinition="conf:2")["taskDefinition"]
check(gone["status"] == "INACTIVE" and "deregisteredAt" in gone, "deregistered")
fails_with("ClientException", lambda: ecs.run_task(
    taskDefinition="conf:2", launchType="FARGATE", networkConfiguration=NETWORK),
    "an inactive revision does not run")
ok("deregister_task_definition")

# A task that runs, logs and exits
run = dict(cluster="default", taskDefinition="conf:1", launchType="FARGATE",
           networkConfiguration=NETWORK, startedBy="conformance", clientToken="token-1",
           tags=[{"key": "pod", "value": "ns/one"}],
           overrides={"containerOverrides": [{"name": "app", "environment": [
               {"name": "EXTRA", "value": "1"}]}]})
a = ecs.run_task(**run)
b = ecs.run_task(**run)
check(not a["failures"] and len(a["tasks"]) == 1, f"one task: {a}")
arn = a["tasks"][0]["taskArn"]
check(b["tasks"][0]["taskArn"] == arn, "the same clientToken answers the same task")
check(arn.startswith("arn:aws:ecs:us-east-1:123456789012:task/default/"), arn)
listed = ecs.list_tasks(cluster="default", startedBy="conformance")["taskArns"]
check(listed == [arn], f"one task started: {listed}")
ok("run_task (clientToken)")

seen = []
deadline = time.time() + 30
task = None
while time.time() < deadline:
    task = ecs.describe_tasks(cluster="default", tasks=[arn], include=["TAGS"])["tasks"][0]
    if not seen or seen[-1] != task["lastStatus"]:
        seen.append(task["lastStatus"])
    if task["lastStatus"] == "STOPPED":
        break
    time.sleep(0.05)
check(task["lastStatus"] == "STOPPED", f"stopped in time: {seen}")
check("RUNNING" in seen, f"it ran: {seen}")
check([STATUSES.index(s) for s in seen] == sorted(STATUSES.index(s) for s in seen),
      f"statuses in order: {seen}")
exits = {c["name"]: c.get("exitCode") for c in task["containers"]}
check(exits == {"app": 3, "side": 137}, f"exit codes: {exits}")
check(task["stopCode"] == "EssentialContainerExited", task.get("stopCode"))
ip = [d["value"] for d in task["attachments"][0]["details"] if d["name"] == "privateIPv4Address"]
check(ip and task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"] == ip[0],
      "the ENI's address")
check(task["tags"] == [{"key": "pod", "value": "ns/one"}], f"tags: {task.get('tags')}")
check(task["stoppedAt"] >= task["startedAt"], "times parse")
missing = ecs.describe_tasks(cluster="default", tasks=[arn[:-4] + "0000"])
check(missing["failures"][0]["reason"] == "MISSING", "unknown tasks are failures")
ok("describe_tasks until STOPPED: " + " ".join(seen))

# Its log, followed with forward tokens until nothing new comes
stream = "conf/app/" + arn.rsplit("/", 1)[1]
messages, token = [], None
while True:
    kw = {"nextToken": token} if token else {"startFromHead": True}
    page = logs.get_log_events(logGroupName="/ecs/conf", logStreamName=stream, limit=5, **kw)
    messages += [e["message"] for e in page["events"]]
    if page["nextForwardToken"] == token:
        break
    token = page["nextForwardToken"]
numbers = [int(m.rsplit(" ", 1)[1]) for m in messages if m.startswith("app: line ")]
check(numbers == list(range(1, len(numbers) + 1)) and len(numbers) > 10, f"lines: {numbers}")
check(messages[-1] == "app: exiting with code 3", messages[-1])
ok("get_log_events (tokens)")
streams = logs.describe_log_streams(logGroupName="/ecs/conf", logStreamNamePrefix="conf/")
check(stream in [s["logStreamName"] for s in streams["logStreams"]], "the stream is listed")
found = logs.filter_log_events(logGroupName="/ecs/conf", filterPattern="exiting")["events"]
check(any(e["logStreamName"] == stream for e in found), "filtered")
ok("describe_log_streams, filter_log_events")

# stop_task, list_tasks with paging
forever = ecs.register_task_definition(**definition("forever", [
    container("app", {"MOCKCLOUD_RUN_MS": "forever"})]))["taskDefinition"]["taskDefinitionArn"]
arns = [ecs.run_task(taskDefinition=forever, launchType="FARGATE", networkConfiguration=NETWORK,
                     startedBy="pager")["tasks"][0]["taskArn"] for _ in range(5)]
pages = list(ecs.get_paginator("list_tasks").paginate(
    cluster="default", startedBy="pager", PaginationConfig={"PageSize": 2}))
check([len(p["taskArns"]) for p in pages] == [2, 2, 1], f"pages: {pages}")
check(sorted(a for p in pages for a in p["taskArns"]) == sorted(arns), "every task once")
ok("list_tasks (paging)")
stopped = ecs.stop_task(cluster="default", task=arns[0], reason="pod deleted")["task"]
check(stopped["desiredStatus"] == "STOPPED", "desired STOPPED")
deadline = time.time() + 30
while time.time() < deadline:
    t = ecs.describe_tasks(cluster="default", tasks=[arns[0]])["tasks"][0]
    if t["lastStatus"] == "STOPPED":
        break
    time.sleep(0.1)
check(t["lastStatus"] == "STOPPED" and t["stopCode"] == "UserInitiated", t["lastStatus"])
check(t["stoppedReason"] == "pod deleted", t.get("stoppedReason"))
left = ecs.list_tasks(cluster="default", startedBy="pager", desiredStatus="RUNNING")["taskArns"]
check(len(left) == 4, f"four still running: {left}")
ok("stop_task")
ecs.tag_resource(resourceArn=arns[1], tags=[{"key": "a", "value": "b"}])
check(ecs.list_tags_for_resource(resourceArn=arns[1])["tags"] == [{"key": "a", "value": "b"}],
      "tags")
ecs.untag_resource(resourceArn=arns[1], tagKeys=["a"])
ok("tag_resource, list_tags_for_resource, untag_resource")

# STS: a web identity token for keys, then calls with them
def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).decode().rstrip("=")


jwt = ".".join([b64({"alg": "RS256", "kid": "k"}),
                b64({"iss": "https://oidc.example", "aud": "sts.amazonaws.com",
                     "sub": "system:serviceaccount:vk:provider", "exp": int(time.time()) + 600}),
                "signature"])
assumed = sts.assume_role_with_web_identity(
    RoleArn="arn:aws:iam::123456789012:role/vk-fargate", RoleSessionName="vk-session",
    WebIdentityToken=jwt, DurationSeconds=900)
creds = assumed["Credentials"]
check(creds["AccessKeyId"].startswith("ASIA"), creds["AccessKeyId"])
check(assumed["AssumedRoleUser"]["Arn"] ==
      "arn:aws:sts::123456789012:assumed-role/vk-fargate/vk-session", assumed["AssumedRoleUser"])
temp = dict(key=creds["AccessKeyId"], secret=creds["SecretAccessKey"], token=creds["SessionToken"])
client("ecs", **temp).list_tasks(cluster="default")
client("logs", **temp).describe_log_groups()
me = client("sts", **temp).get_caller_identity()
check(me["Arn"].endswith("assumed-role/vk-fargate/vk-session") and me["Account"] == "123456789012",
      f"caller: {me}")
fails_with("InvalidIdentityToken", lambda: sts.assume_role_with_web_identity(
    RoleArn="arn:aws:iam::123456789012:role/vk", RoleSessionName="vk-s",
    WebIdentityToken="not-a-jwt"), "a token that is no JWT")
ok("assume_role_with_web_identity, then calls with its keys")

# Bad requests
e = fails_with("ClientException", lambda: ecs.register_task_definition(
    **definition("bad", [container("app", {})], cpu="256", memory="4096")), "a size Fargate lacks")
check("256 CPU, 4096 memory" in str(e), str(e))
fails_with("ClusterNotFoundException", lambda: ecs.list_tasks(cluster="nope"), "a cluster")
e = fails_with("InvalidParameterException", lambda: ecs.run_task(
    taskDefinition=forever, launchType="FARGATE"), "no network configuration")
check("Network Configuration" in str(e), str(e))
fails_with("InvalidSignatureException", lambda: client("ecs", secret="wrong").list_tasks(),
           "a wrong secret")
fails_with("UnrecognizedClientException", lambda: client("ecs", key="AKIDNOBODY").list_tasks(),
           "an unknown key")
exec_task = ecs.run_task(taskDefinition=forever, launchType="FARGATE", networkConfiguration=NETWORK,
                         enableExecuteCommand=True)["tasks"][0]["taskArn"]
fails_with("TargetNotConnectedException", lambda: ecs.execute_command(
    cluster="default", task=exec_task, container="app", command="sh", interactive=True),
    "ExecuteCommand is not simulated")
ok("bad requests")

# Throttling: botocore retries it away, or gives up with ThrottlingException
admin_faults({"throttle_calls": 2})
answer = ecs.list_tasks(cluster="default")
check(answer["ResponseMetadata"]["RetryAttempts"] == 2, answer["ResponseMetadata"])
ok("throttled, retried, answered")
admin_faults({"throttle_calls": 10})
few = client("ecs", retries={"max_attempts": 2, "mode": "standard"})
fails_with("ThrottlingException", lambda: few.list_tasks(cluster="default"), "too many throttles")
admin_faults({})
ok("throttled beyond the retries")
